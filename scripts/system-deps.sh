#!/usr/bin/env bash
# Install the Debian packages that `make run` / `make test` need, but only the
# ones that are missing. Prints nothing when everything is already present.
#
#   scripts/system-deps.sh run    what running tui-oauth needs:
#     python3-venv   -> only if `python3 -m venv` would not work
#     gnome-keyring  -> gnome-keyring-daemon (Secret Service for `keyring`; over SSH
#                       tui-oauth starts a private one, see README "The keyring over SSH")
#     dbus           -> dbus-daemon, dbus-run-session (that private session bus)
#   scripts/system-deps.sh test   (the default) the above, and what only the tests use:
#     postgresql     -> initdb, pg_ctl, pg_isready (real server for the tests)
#     tmux           -> terminal multiplexer used to drive the TUI
#     systemd        -> systemd-analyze (tests/e2e/test_systemd_unit.py verifies contrib/'s unit)
set -euo pipefail

case "${1:-test}" in
run) for_tests=0 ;;
test) for_tests=1 ;;
*)
    echo "usage: scripts/system-deps.sh [run|test]" >&2
    exit 2
    ;;
esac

missing=()

have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_pg_server() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/pg_isready" ]]; then
            return 0
        fi
    done
    return 1
}

have_working_venv() {
    # Debian's system python ships ensurepip (and so a working `python3 -m
    # venv`) only in python3-venv; other pythons (pyenv, python.org) have it.
    have_cmd python3 && python3 -c 'import venv, ensurepip; ensurepip.version()' >/dev/null 2>&1
}

have_cmd gnome-keyring-daemon || missing+=(gnome-keyring)
{ have_cmd dbus-run-session && have_cmd dbus-daemon; } || missing+=(dbus)
have_working_venv || missing+=(python3-venv)
if ((for_tests)); then
    have_pg_server || missing+=(postgresql)
    have_cmd tmux || missing+=(tmux)
    have_cmd systemd-analyze || missing+=(systemd)
fi

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "system-deps: installing missing Debian packages: ${missing[*]}" >&2

if ! have_cmd apt-get; then
    echo "system-deps: apt-get not found; install these packages by hand: ${missing[*]}" >&2
    exit 1
fi

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
    if have_cmd sudo; then
        sudo_cmd=(sudo)
    else
        echo "system-deps: not root and sudo is not available; install as root: ${missing[*]}" >&2
        exit 1
    fi
fi

apt_opts=(-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -qq update
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -qq -y \
    --no-install-recommends install "${missing[@]}" >/dev/null

# Re-check, so a package that installed but did not provide what we need is
# reported here rather than as a confusing failure later.
still=()
have_cmd gnome-keyring-daemon || still+=(gnome-keyring-daemon)
have_cmd dbus-run-session || still+=(dbus-run-session)
have_cmd dbus-daemon || still+=(dbus-daemon)
have_working_venv || still+=("python3 -m venv")
if ((for_tests)); then
    have_pg_server || still+=("postgresql server (initdb/pg_ctl/pg_isready)")
    have_cmd tmux || still+=(tmux)
    have_cmd systemd-analyze || still+=(systemd-analyze)
fi
if ((${#still[@]} > 0)); then
    echo "system-deps: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "system-deps: done" >&2
