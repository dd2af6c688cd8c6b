#!/usr/bin/env bash
# Run the test suite against real services, all private to this run:
#   * a throw-away PostgreSQL server on 127.0.0.1:<free port>
#   * a private D-Bus session bus with an unlocked gnome-keyring (Secret Service)
#   * a fresh HOME / XDG dirs / TMPDIR inside one temp dir
# Everything is stopped and removed on exit, including on failure or Ctrl-C.
#
# Usage: scripts/run-tests.sh [pytest args...]
#            one layer: scripts/run-tests.sh -n 2 tests/unit, or -m unit (service, cli, tui,
#            e2e; README "Tests"); a -m expression narrows both phases (timing last)
#        scripts/run-tests.sh --exec COMMAND [ARGS...]   run COMMAND instead of pytest,
#            with the same services and environment (benchmarks on PostgreSQL:
#            --exec '.venv/bin/python benchmarks/console_scale.py --db "$TUI_OAUTH_TEST_PG_URL"')
#
# Exported to pytest:
#   TUI_OAUTH_TEST_PG_URL                  postgresql+psycopg://tuioauth:<pw>@127.0.0.1:<port>/postgres
#   TUI_OAUTH_TEST_SERVICES=1              tests must not skip for a missing service
#   TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE file (0600) with the keyring passphrase
#   HOME, XDG_{RUNTIME,DATA,CONFIG,CACHE,STATE}_DIR, TMPDIR  (all inside the temp dir)
#   DBUS_SESSION_BUS_ADDRESS               set by dbus-run-session
set -euo pipefail

run_exec=0
if [[ "${1:-}" == "--exec" ]]; then
    run_exec=1
    shift
fi
export RUN_TESTS_EXEC=$run_exec

# A marker expression given (-m unit: one layer, README "Tests") is combined with the
# two phases' own (below) rather than overridden by them: pytest keeps only the last -m.
mark_rest="not timing"
mark_timing="timing"
if ((!run_exec)); then
    args=()
    while (($#)); do
        case $1 in
        -m)
            (($# >= 2)) || { echo "run-tests: -m needs a marker expression" >&2; exit 2; }
            mark_rest="($2) and not timing"
            mark_timing="($2) and timing"
            shift 2
            ;;
        -m?*)
            mark_rest="(${1#-m}) and not timing"
            mark_timing="(${1#-m}) and timing"
            shift
            ;;
        *)
            args+=("$1")
            shift
            ;;
        esac
    done
    set -- ${args[@]+"${args[@]}"}
fi
export RUN_TESTS_MARK_REST=$mark_rest RUN_TESTS_MARK_TIMING=$mark_timing

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

py="${TUI_OAUTH_PYTHON:-$repo_root/.venv/bin/python}"
if [[ ! -x "$py" ]]; then
    echo "run-tests: $py not found; run 'make venv' first" >&2
    exit 1
fi

pg_os_user="tuioauth-pg"
pg_role="tuioauth"

log() { printf 'run-tests: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# ---------------------------------------------------------------- locate tools
pg_bindir="${PG_BINDIR:-}"
if [[ -z "$pg_bindir" ]]; then
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" ]] && pg_bindir="$d" # glob is sorted; keep the last (newest)
    done
fi
[[ -n "$pg_bindir" && -x "$pg_bindir/initdb" ]] ||
    die "PostgreSQL server binaries not found (set PG_BINDIR or run 'make system-deps')"
for tool in dbus-run-session dbus-daemon gnome-keyring-daemon; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found; run 'make system-deps'"
done

# ---------------------------------------------------------------- temp dir + cleanup
is_root=0
[[ "$(id -u)" -eq 0 ]] && is_root=1

if ((is_root)); then
    # The PostgreSQL user must be able to traverse to its data dir: use /tmp,
    # not a TMPDIR that might live under /root.
    tmp="$(mktemp -d /tmp/tui-oauth-test.XXXXXXXX)"
else
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/tui-oauth-test.XXXXXXXX")"
fi
pgdata="$tmp/pg/data"
pgsock="$tmp/pg/sock"
pglog="$tmp/pg/server.log"
pg_started=0
pytest_pidfile="$tmp/pytest.pid"
signal_received=""

pg_as_owner() {
    # Run a PostgreSQL server binary as the user owning the cluster.
    if ((is_root)); then
        (cd "$tmp/pg" && runuser -u "$pg_os_user" -- "$@")
    else
        "$@"
    fi
}

stop_pytest() {
    # dbus-run-session dies at once on Ctrl-C while pytest is still shutting
    # down; wait for pytest before removing the directory it works in. On
    # TERM/HUP (possibly sent to this script alone) stop it ourselves.
    local pid i
    [[ -s "$pytest_pidfile" ]] || return 0
    pid="$(<"$pytest_pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    if [[ "$signal_received" == INT ]]; then
        for ((i = 0; i < 150; i++)); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.1
        done
    fi
    kill -0 "$pid" 2>/dev/null || return 0
    log "stopping pytest (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    trap '' INT TERM HUP # a second Ctrl-C must not skip the cleanup
    if [[ -n "$signal_received" ]]; then
        stop_pytest
    fi
    if ((pg_started)); then
        pg_as_owner "$pg_bindir/pg_ctl" stop -D "$pgdata" -m immediate -w -t 30 >/dev/null 2>&1 ||
            log "warning: could not stop PostgreSQL (data dir $pgdata)"
    fi
    rm -rf -- "$tmp" || log "warning: could not remove $tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'signal_received=INT; exit 130' INT
trap 'signal_received=TERM; exit 143' TERM
trap 'signal_received=HUP; exit 129' HUP

chmod 0711 "$tmp"
mkdir -p "$tmp/pg" "$pgsock" "$tmp/home" "$tmp/run" "$tmp/tmp" \
    "$tmp/home/.local/share" "$tmp/home/.config" "$tmp/home/.cache" "$tmp/home/.local/state"
chmod 0700 "$tmp/home" "$tmp/run"

rand() { "$py" -c 'import secrets; print(secrets.token_urlsafe(24), end="")'; }

# ---------------------------------------------------------------- PostgreSQL
t_start=$EPOCHREALTIME
pg_password="$(rand)"
pg_port="$("$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"

if ((is_root)); then
    # PostgreSQL refuses to run as root: use an unprivileged system user.
    if ! id -u "$pg_os_user" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$pg_os_user" 2>/dev/null ||
            id -u "$pg_os_user" >/dev/null 2>&1 || # lost a race with a parallel run
            die "could not create system user $pg_os_user"
    fi
    chown -R "$pg_os_user:" "$tmp/pg"
fi
chmod 0700 "$tmp/pg"

pwfile="$tmp/pg/pwfile"
(umask 077 && printf '%s\n' "$pg_password" >"$pwfile")
((is_root)) && chown "$pg_os_user:" "$pwfile"

if ! pg_as_owner "$pg_bindir/initdb" -D "$pgdata" --username="$pg_role" --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C --no-sync --no-instructions \
    >"$tmp/pg/initdb.log" 2>&1; then
    cat "$tmp/pg/initdb.log" >&2
    die "initdb failed"
fi
rm -f "$pwfile"

pg_opts="-c listen_addresses=127.0.0.1 -p $pg_port -k '$pgsock'"
pg_opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
pg_opts+=" -c max_connections=200"
pg_started=1 # from here on, cleanup tries to stop it
if ! pg_as_owner "$pg_bindir/pg_ctl" start -D "$pgdata" -l "$pglog" -w -t 60 \
    -o "$pg_opts" >/dev/null 2>&1; then
    log "PostgreSQL server log ($pglog):"
    cat "$pglog" >&2 || true
    die "PostgreSQL did not start on 127.0.0.1:$pg_port"
fi
ready=0
for _ in $(seq 1 100); do
    if "$pg_bindir/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -t 2; then
        ready=1
        break
    fi
    sleep 0.1
done
if ((!ready)); then
    log "PostgreSQL server log ($pglog):"
    cat "$pglog" >&2 || true
    die "PostgreSQL is not accepting connections on 127.0.0.1:$pg_port"
fi
t_pg=$EPOCHREALTIME

# ---------------------------------------------------------------- environment
export HOME="$tmp/home"
export XDG_RUNTIME_DIR="$tmp/run" # gnome-keyring's control socket lives here
export XDG_DATA_HOME="$HOME/.local/share"
export XDG_CONFIG_HOME="$HOME/.config"
export XDG_CACHE_HOME="$HOME/.cache"
export XDG_STATE_HOME="$HOME/.local/state"
export TMPDIR="$tmp/tmp"
unset DBUS_SESSION_BUS_ADDRESS GNOME_KEYRING_CONTROL SSH_AUTH_SOCK PYTHON_KEYRING_BACKEND
# Bytecode is cached (in __pycache__, ignored by git) even where the environment says
# not to: otherwise each test process, and each program a test starts, compiles the
# package and pytest rewrites every test module again (CPU the suite's budget is short of).
unset PYTHONDONTWRITEBYTECODE
# and written now, once, for the package (as an installed copy has it), rather than by
# each test process and each program a test starts, all at once, on a clean clone.
"$py" -m compileall -q -j 0 "$repo_root/tui_oauth" >/dev/null || true

export TUI_OAUTH_TEST_PG_URL="postgresql+psycopg://$pg_role:$pg_password@127.0.0.1:$pg_port/postgres"
export TUI_OAUTH_TEST_SERVICES=1
export TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE="$tmp/keyring-passphrase"
(umask 077 && rand >"$TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE")
chmod 0600 "$TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE"

# dbus-daemon warns "Failed to set fd limit" when it may not raise
# RLIMIT_NOFILE (root in a container). Send the daemon's own stderr to a log
# (shown after the run, minus that line) instead of filtering it through a
# pipe: a filter process would inherit dbus-run-session's --print-address fd
# and keep it from ever reading the bus address to EOF.
dbus_daemon_wrapper="$tmp/dbus-daemon"
dbus_log="$tmp/dbus-daemon.log"
cat >"$dbus_daemon_wrapper" <<EOF
#!/bin/sh
exec $(command -v dbus-daemon) "\$@" 2>>'$dbus_log'
EOF
chmod 0755 "$dbus_daemon_wrapper"

log "PostgreSQL $("$pg_bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port," \
    "up in $(awk -v a="$t_start" -v b="$t_pg" 'BEGIN { printf "%.1f", b - a }')s; temp dir $tmp"

# ---------------------------------------------------------------- pytest
# Run in the background and `wait`, so a TERM/HUP sent to this script is
# handled at once rather than after pytest finishes. The subshell resets
# INT/QUIT (bash ignores them for background jobs) and keeps our stdin, so
# Ctrl-C and --pdb still reach pytest.
exec 3<&0
set +e
# shellcheck disable=SC2016 # expanded by the inner sh, not here
(
    trap - INT QUIT
    exec dbus-run-session --dbus-daemon="$dbus_daemon_wrapper" -- sh -c '
        pidfile=$1
        shift
        gnome-keyring-daemon --unlock --components=secrets \
            <"$TUI_OAUTH_TEST_KEYRING_PASSPHRASE_FILE" >/dev/null || {
            echo "run-tests: ERROR: gnome-keyring-daemon --unlock failed" >&2
            exit 3
        }
        echo $$ >"$pidfile"
        if [ "$RUN_TESTS_EXEC" = 1 ]; then
            exec sh -c "$*"
        fi
        # Two phases: everything but the timing tests in parallel, then the timing
        # tests (marked "timing": they compare durations) alone, in one process, so
        # that no other test shares the CPU with them.
        "$0" -m pytest "$@" -m "$RUN_TESTS_MARK_REST" &
        echo $! >"$pidfile"
        wait $!
        first=$?
        [ "$first" = 0 ] || exit "$first"
        "$0" -m pytest "$@" -m "$RUN_TESTS_MARK_TIMING" -n 0 -q &
        echo $! >"$pidfile"
        wait $!
        second=$?
        [ "$second" = 5 ] && exit 0  # no timing test among those selected
        exit "$second"
    ' "$py" "$pytest_pidfile" "$@"
) <&3 3<&- &
wait "$!"
rc=$?
set -e

if [[ -s "$dbus_log" ]] && grep -qv 'Failed to set fd limit' "$dbus_log"; then
    log "dbus-daemon said:"
    grep -v 'Failed to set fd limit' "$dbus_log" >&2 || true
fi

case $rc in
0) ;;
*) if ((run_exec)); then
    log "the command failed (exit code $rc)"
    exit "$rc"
fi ;;&
0) ;;
5)
    log "ERROR: pytest collected no tests (exit code 5) - check PYTEST_ARGS / -k selection"
    rc=1
    ;;
*) log "pytest failed (exit code $rc)" ;;
esac
exit "$rc"
