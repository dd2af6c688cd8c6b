"""`tui-oauth doctor`: where everything is, and whether the database and the
keyring agree (no row without its secret, no secret without its row)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from tui_oauth.core.config import default_data_dir
from tui_oauth.core.database import reader, sqlite_path, sqlite_space
from tui_oauth.core.errors import SecretStoreError
from tui_oauth.core.logfile import console_log_path
from tui_oauth.core.migrations import current_revision
from tui_oauth.core.models import (
    Consumer,
    ConsumerInfo,
    KeyringItem,
    ServiceProvider,
    StoreMeta,
    consumer_secret_item,
    previous_secret_item,
    private_key_item,
    provider_secret_item,
)
from tui_oauth.core.provider.crypto import CHECK_META_KEY
from tui_oauth.core.registry import services

if TYPE_CHECKING:
    from tui_oauth.core.store import Store

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn, fail, info
    message: str
    fix: str | None = None


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    rows_without_secret: list[str] = field(default_factory=list)
    secrets_without_row: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def add(self, name: str, status: str, message: str, fix: str | None = None) -> None:
        self.checks.append(Check(name, status, message, fix))


def _mode_check(report: DoctorReport, label: str, path: Path, want: int) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    except OSError as exc:
        report.add(label, FAIL, f"{path}: cannot stat ({exc.strerror})")
        return
    if mode & ~want:
        report.add(label, WARN, f"{path} is {stat.filemode(path.stat().st_mode)} "
                   f"({oct(mode)}); others can read it.", fix=f"chmod {oct(want)[2:]} {path}")
    else:
        report.add(label, OK, f"{path} ({oct(mode)})")


def _console_log_check(report: DoctorReport) -> None:
    """Where the console writes its log (it never writes to the terminal it draws on)."""
    path = console_log_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        report.add("console log", INFO, f"{path} (not yet written)")
        return
    except OSError as exc:
        report.add("console log", WARN, f"{path}: cannot stat ({exc.strerror})")
        return
    if mode & 0o077:
        report.add("console log", WARN, f"{path} (exists, {oct(mode)}); others can read it.",
                   fix=f"chmod 600 {path}")
    else:
        report.add("console log", INFO, f"{path} (exists)")


def _config_check(report: DoctorReport) -> None:
    """Where the config file is looked for, and whether it reads."""
    from tui_oauth.core.config import ConfigError, config_path, load_config

    try:
        config = load_config()
    except ConfigError as exc:
        report.add("config file", FAIL, exc.message, fix=exc.hint)
        return
    if not config.exists:
        report.add("config file", INFO, f"{config_path()} (none; defaults apply)")
        return
    said = [name for name, value in (("db", config.db), ("keymap", config.keymap),
                                     ("serve", config.serve)) if value]
    report.add("config file", INFO, f"{config.path} (sets {', '.join(said) or 'nothing'})")


#: Seconds a clock probe (timedatectl, chronyc) may take before it is given up.
CLOCK_PROBE_TIMEOUT = 3.0


def _probe(argv: list[str]) -> str | None:
    """A probe's standard output, or None: not installed, failed, or too slow (killed
    after CLOCK_PROBE_TIMEOUT: a hung D-Bus must not hang doctor)."""
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, check=False,
                              timeout=CLOCK_PROBE_TIMEOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def clock_synchronised() -> tuple[bool | None, str]:
    """Whether this host's clock is kept by NTP, and who said so: timedatectl
    (systemd), else chronyc; (None, "") when neither can tell (a container, another
    init, neither installed)."""
    out = _probe(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if out is not None and out.strip() in ("yes", "no"):
        return out.strip() == "yes", "timedatectl"
    out = _probe(["chronyc", "-n", "tracking"])
    for line in (out or "").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "leap status":
            return value.strip().lower() != "not synchronised", "chronyc"
    return None, ""


def _clock_check(report: DoctorReport) -> None:
    """Consumers' timestamps are checked against our clock (timestamp_window): a clock
    that drifts refuses every consumer at once."""
    synced, source = clock_synchronised()
    if synced is None:
        report.add("clock", INFO, "cannot tell whether this host's clock is synchronised "
                   "(neither timedatectl nor chronyc answered)")
    elif synced:
        report.add("clock", OK, f"synchronised (NTP, says {source})")
    else:
        report.add("clock", WARN, f"not synchronised (NTP, says {source}): consumers' "
                   "timestamps are checked against this clock, and a drift refuses them all "
                   "with timestamp_refused",
                   fix="Turn NTP on: `timedatectl set-ntp true` (systemd-timesyncd), or run "
                       "chronyd or ntpd.")


class DoctorService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def expected_secrets(self, session: Session | None = None) -> dict[str, str]:
        """Keyring item name -> what owns it, for every row that says it has a secret."""
        if session is None:
            with self.store.session() as s:
                return self.expected_secrets(s)
        s = session
        expected: dict[str, str] = {}
        for c in s.exec(select(Consumer).where(Consumer.has_shared_secret)).all():
            expected[consumer_secret_item(c)] = f"consumer {c.key!r} shared secret"
        for c in s.exec(select(Consumer).where(
                col(Consumer.previous_secret_until).is_not(None))).all():
            expected[previous_secret_item(c)] = (f"consumer {c.key!r} previous shared secret "
                                                 "(a rotation's overlap)")
        for p in s.exec(select(ServiceProvider).where(ServiceProvider.has_shared_secret)).all():
            expected[provider_secret_item(p)] = f"service provider {p.name!r} shared secret"
        info = s.get(ConsumerInfo, 1)
        if info is not None:
            expected[private_key_item(info)] = "Consumer Info private key"
        if s.get(StoreMeta, CHECK_META_KEY) is not None:
            expected[KeyringItem.DATA_KEY] = "provider data key (encrypts token secrets)"
        return expected

    def _overlaps(self, report: DoctorReport) -> None:
        """Rotated shared secrets still kept past their overlap (the purge deletes them;
        the provider refuses them already)."""
        late = services(self.store).consumers.old_secrets_due()
        if late:
            report.add("rotated secrets", WARN,
                       f"{len(late)} consumer(s) keep an old shared secret past its overlap: "
                       + ", ".join(repr(k) for k in late[:10]) + ("…" if len(late) > 10 else ""),
                       fix="`tui-oauth tokens purge` deletes them (a running server does too, "
                           "every minute); the provider already refuses them.")

    def _space(self, report: DoctorReport) -> None:
        space = sqlite_space(self.store.engine)
        if space is None:
            return
        mib = 1048576
        message = (f"{space.file_bytes / mib:.1f} MiB, of which {space.free_bytes / mib:.1f} "
                   f"MiB free inside the file; WAL {space.wal_bytes / mib:.1f} MiB")
        wasteful = space.free_bytes > 64 * mib and space.free_bytes > space.file_bytes // 2
        report.add("database size", WARN if wasteful else INFO, message,
                   fix="`tui-oauth db vacuum` gives the free space back." if wasteful else None)

    def _server_failures(self, report: DoctorReport) -> None:
        """What each `serve` reported it could not read from its keyring."""
        from tui_oauth.core.provider.consumers import STATUS_PREFIX

        with self.store.session() as s:
            rows = s.exec(select(StoreMeta)
                          .where(col(StoreMeta.key).startswith(STATUS_PREFIX))).all()
        for row in rows:
            host = row.key[len(STATUS_PREFIX):]
            try:
                data = json.loads(row.value)
                keys = ", ".join(repr(k) for k in data.get("consumers", []))
                message = (f"serve on {host!r} cannot read the shared secret of "
                           f"{data.get('count', '?')} consumer(s) since {data.get('since')}"
                           f"{': ' + keys if keys else ''} "
                           f"({data.get('error') or 'keyring error'}). "
                           "Their signed requests are refused.")
            except (ValueError, AttributeError, TypeError):
                message = f"serve on {host!r} reported keyring failures (unreadable record)."
            report.add("server keyring reads", FAIL, message,
                       fix="Unlock the keyring on that host (`tui-oauth keyring status`); the "
                           "server retries every 30 s and clears this when it succeeds.")

    def run(self) -> DoctorReport:
        store = self.store
        report = DoctorReport()
        report.add("store", INFO, f"{store.display_url} ({store.dialect})")
        report.add("schema", INFO, f"revision {current_revision(reader(store.engine))}")
        report.add("store id", INFO, f"{store.store_id} (keyring service "
                   f"{store.secrets.service_name!r})")
        path = sqlite_path(make_url(store.url))
        if path is not None:
            if path.parent == default_data_dir():
                _mode_check(report, "database directory", path.parent, 0o700)
            for suffix in ("", "-wal", "-shm"):
                _mode_check(report, f"database file{suffix}", Path(f"{path}{suffix}"), 0o600)
            self._space(report)
        _console_log_check(report)
        _config_check(report)
        _clock_check(report)
        self._overlaps(report)
        try:
            store.secrets.check()
        except SecretStoreError as exc:
            report.add("keyring", FAIL, exc.message, fix=exc.hint)
            return report
        report.add("keyring", OK, store.secrets.backend_name)
        self._server_failures(report)

        expected = self.expected_secrets()
        for item, owner in sorted(expected.items(), key=lambda kv: kv[1]):
            if store.secrets.get(item) is None:
                report.rows_without_secret.append(owner)
        if report.rows_without_secret:
            report.add("rows without secret", FAIL,
                       f"{len(report.rows_without_secret)}: "
                       + "; ".join(report.rows_without_secret),
                       fix="Set the secret again with `edit` (or `info rotate-key` for the "
                           "Consumer Info key).")
        else:
            report.add("rows without secret", OK, f"all {len(expected)} secret(s) present")

        try:
            names = store.secrets.list_names()
        except SecretStoreError as exc:
            report.add("secrets without row", FAIL, f"cannot list the keyring items: {exc.message}",
                       fix=exc.hint)
            return report
        if names is None:
            report.add("secrets without row", INFO,
                       f"{store.secrets.backend_name} cannot list its items; not checked")
        else:
            report.secrets_without_row = sorted(set(names) - set(expected))
            if report.secrets_without_row:
                report.add("secrets without row", WARN,
                           f"{len(report.secrets_without_row)} keyring item(s) belong to no row: "
                           + ", ".join(report.secrets_without_row),
                           fix="`tui-oauth doctor --fix` deletes them.")
            else:
                report.add("secrets without row", OK, "none")
        return report

    def remove_orphan_secrets(self, only: list[str] | None = None) -> list[str]:
        """Delete keyring items that belong to no row; returns their names.

        Decided under the keyring lock, inside a write transaction: every
        transaction that writes a secret holds that lock until it commits, so an
        item whose row is not committed yet is never taken for an orphan.  With
        ``only`` (the orphans a person was shown and agreed to delete), only those
        that are still orphans are deleted.
        """
        with self.store.transaction() as uow:
            uow.guard_keyring(exclusive=True)
            names = self.store.secrets.list_names() or []
            expected = self.expected_secrets(uow.session)
            orphans = sorted(set(names) - set(expected))
            if only is not None:
                orphans = sorted(set(orphans) & set(only))
            if not orphans:
                return []
            for name in orphans:
                self.store.secrets.delete(name)
            uow.audit("doctor.remove_orphans", "keyring", self.store.secrets.service_name,
                      detail=f"removed {len(orphans)} orphan item(s): {', '.join(orphans)}")
        return orphans
