"""The refusal log: the service (filters, summary, clock, purge) on both engines, the
recorder, and every oauth_problem produced over real HTTP on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import shlex
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
import requests
from oauthlib.oauth1 import Client
from sqlmodel import col, select

from tests.helpers import all_text, count, pem_private, rsa_key
from tests.provider_support import (
    OAUTH,
    Server,
    add_hmac_consumer,
    expire_token,
    problem_of,
    running_server,
)
from tui_oauth.core.errors import NotFoundError, ValidationError
from tui_oauth.core.models import ConsumerClock, Refusal
from tui_oauth.core.provider.engine import ProviderEngine
from tui_oauth.core.provider.problems import NO_OAUTH, STATUS, Problem
from tui_oauth.core.provider.refusals import Keys, RefusalLog, Sent
from tui_oauth.core.provider.settings import ProviderSettings, set_setting
from tui_oauth.core.registry import services
from tui_oauth.core.store import Store
from tui_oauth.core.timeutil import utcnow


def put(store: Store, n: int = 1, **fields: Any) -> None:
    values: dict[str, Any] = {"problem": "signature_invalid", "answered": "signature_invalid",
                              "consumer_key": "c1", "bucket": "c1", "method": "GET",
                              "url": "https://pub.example/rest/whoami",
                              "seen_url": "https://pub.example/rest/whoami",
                              "client_addr": "127.0.0.1", "signature_method": "HMAC-SHA1"}
    values.update(fields)
    with store.transaction() as uow:
        for _ in range(n):
            uow.session.add(Refusal(**values))


def test_service_filters_summary_clock_and_purge(store: Store) -> None:
    put(store, 3)
    put(store, 2, problem="timestamp_refused", answered="timestamp_refused", offset=-432,
        timestamp=1_700_000_000)
    put(store, 1, consumer_key="junk", bucket="", problem="consumer_key_unknown",
        answered="consumer_key_unknown", client_addr="10.9.8.7")
    put(store, 1, consumer_key="c2", bucket="c2",
        seen_url="http://127.0.0.1:8080/rest/whoami")
    svc = services(store).refusals

    rows = svc.list()
    assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)  # newest first
    assert len(rows) == 7
    assert {r.consumer_key for r in svc.list(consumer="c1")} == {"c1"}
    assert len(svc.list(consumer="c1")) == 5
    junk = svc.list(consumer="junk")
    assert len(junk) == 1 and not junk[0].known and junk[0].problem == "consumer_key_unknown"
    assert len(svc.list(problem="timestamp_refused")) == 2
    assert [r.client_addr for r in svc.list(text="10.9.8")] == ["10.9.8.7"]
    assert len(svc.list(text="TIMESTAMP_ref")) == 2  # ignoring case
    assert svc.list(since=utcnow() + timedelta(minutes=1)) == []
    assert len(svc.list(limit=2)) == 2
    assert [r.id for r in svc.iter(batch=2)] == [r.id for r in rows]
    assert len(list(svc.iter(consumer="c1", batch=2))) == 5

    ts = svc.list(problem="timestamp_refused")[0]
    assert ts.offset == -432 and "7 min 12 s behind ours" in ts.advice
    assert "the window is 5 min" in ts.advice
    proxied = svc.list(consumer="c2")[0]  # not diagnosed: the URL reached, a possibility
    assert proxied.finding is None
    assert "this server checks against https://pub.example/rest/whoami" in proxied.advice
    assert proxied.advice.endswith("It may also have signed the URL it reached: "
                                   "http://127.0.0.1:8080/rest/whoami.")
    assert svc.list(text="127.0.0.1:8080") == [proxied]  # the URL reached is searched
    assert svc.get(proxied.id) == proxied
    with pytest.raises(NotFoundError) as err:
        svc.get(10**9)
    assert err.value.hint

    summary = svc.summary("c1", recent=2)
    assert summary.counts == {"signature_invalid": 3, "timestamp_refused": 2}
    assert list(summary.counts) == ["signature_invalid", "timestamp_refused"]
    assert summary.total == 5 and len(summary.recent) == 2

    assert svc.clock("c1") is None
    with store.transaction() as uow:
        uow.session.add(ConsumerClock(consumer_key="c1", median_offset=-432, samples=40))
    clock = svc.clock("c1")
    assert clock is not None and clock.median_offset == -432
    assert clock.words == "7 min 12 s behind, from 40 request(s)"

    # purge: past the retention, then beyond the cap per bucket (unknown keys: one bucket)
    put(store, 2, at=utcnow() - timedelta(days=8))
    put(store, 14, consumer_key="junk2", bucket="", problem="consumer_key_unknown",
        answered="consumer_key_unknown")
    assert svc.purge() == 2  # past 7 days; the default cap (200) is far
    with pytest.raises(ValidationError, match="between 10 and 100000 rows"):
        set_setting(store, "refusal_rows_per_consumer", 5)
    with pytest.raises(ValidationError, match="whole number of seconds"):
        set_setting(store, "refusal_retention", "a week")
    with pytest.raises(ValidationError, match="one of: on, off"):
        set_setting(store, "refusal_log", "maybe")
    set_setting(store, "refusal_rows_per_consumer", 10)
    assert svc.purge() == 5  # bucket "" had 15 rows: 10 kept
    with store.session() as s:
        left = s.exec(select(Refusal.bucket, Refusal.consumer_key)
                      .where(Refusal.bucket == "").order_by(col(Refusal.id))).all()
    assert len(left) == 10 and all(k == "junk2" for _b, k in left)  # the newest kept
    assert min(r.at for r in svc.list(limit=1000)) > utcnow() - timedelta(days=7)
    set_setting(store, "refusal_retention", 3600)
    put(store, 1, at=utcnow() - timedelta(hours=2))
    before = len(svc.list(limit=1000))
    services(store).tokens.purge()  # `tokens purge` and serve's 8-hour job bound the log too
    assert len(svc.list(limit=1000)) == before - 1


# Recording, over real HTTP ----------------------------------------------------------------

PUBLIC = "https://jira.example.com/base"
HMAC_KEY, SECRET = "partner", "LEAK-consumer-secret-5e1f0c"
TWO_LO = "reports"


def call(srv: Server, path: str, method: str = "GET", *, key: str = HMAC_KEY,
         secret: str | None = SECRET, signed_url: str | None = None,
         data: dict[str, str] | None = None, host: str | None = None,
         **client: Any) -> requests.Response:
    """Sign ``path`` under the public URL (or ``signed_url``) and send it to the server's
    real address, as a proxy in front of it would (``host``: the Host header it keeps)."""
    body = urlencode(data) if data else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if data else {}
    signer = Client(key, client_secret=secret, **client)
    _uri, signed, _ = signer.sign((signed_url or PUBLIC) + path, http_method=method, body=body,
                                  headers=headers)
    if host is not None:
        signed = {**signed, "Host": host}
    return requests.request(method, srv.base + "/base" + path, headers=signed, data=body,
                            timeout=10)


def raw(srv: Server, path: str, authorization: str) -> requests.Response:
    return requests.get(srv.base + "/base" + path, headers={"Authorization": authorization},
                        timeout=10)


def request_token(srv: Server) -> dict[str, str]:
    r = call(srv, OAUTH + "/request-token", "POST", callback_uri="oob")
    assert r.status_code == 200, r.text
    return {k: v[0] for k, v in parse_qs(r.text).items()}


def access_token(srv: Server, rt: dict[str, str], verifier: str) -> requests.Response:
    return call(srv, OAUTH + "/access-token", "POST", resource_owner_key=rt["oauth_token"],
                resource_owner_secret=rt["oauth_token_secret"], verifier=verifier)


def whoami(srv: Server, at: dict[str, str] | None = None, **client: Any) -> requests.Response:
    if at is not None:
        client.update(resource_owner_key=at["oauth_token"],
                      resource_owner_secret=at["oauth_token_secret"])
    return call(srv, "/rest/whoami", **client)


def test_every_problem_over_http_is_logged_with_its_fields_and_advice(
        sqlite_store: Store) -> None:
    store = sqlite_store
    add_hmac_consumer(store, HMAC_KEY, SECRET, allow_plaintext=True)
    add_hmac_consumer(store, TWO_LO, SECRET, two_lo_allowed=True)
    pem = pem_private(rsa_key(0))
    with running_server(store, public_url=PUBLIC) as srv:
        now = int(time.time())
        # Before any signature: no OAuth, version, absent, malformed, the clock, methods
        assert whoami_plain(srv).status_code == 401
        assert raw(srv, "/rest/whoami", 'OAuth oauth_consumer_key="x", oauth_version="2.0"'
                   ).status_code == 400
        assert raw(srv, "/rest/whoami", f'OAuth oauth_consumer_key="{HMAC_KEY}"'
                   ).status_code == 400
        assert raw(srv, "/rest/whoami", (
            f'OAuth oauth_consumer_key="{HMAC_KEY}", oauth_signature_method="HMAC-SHA1", '
            'oauth_signature="x", oauth_timestamp="soon", oauth_nonce="n"')).status_code == 400
        assert problem_of(whoami(srv, timestamp=str(now - 432))) == "timestamp_refused"
        assert problem_of(whoami(srv, secret=None, signature_method="RSA-SHA1", rsa_key=pem)
                          ) == "signature_method_rejected"
        assert problem_of(whoami(srv, key="nobody")) == "consumer_key_unknown"
        # The signature: a wrong secret; the internal URL signed (a proxy in front)
        assert problem_of(whoami(srv, secret="wrong")) == "signature_invalid"
        assert problem_of(call(srv, "/rest/whoami", signed_url=srv.base + "/base",
                               key=TWO_LO)) == "signature_invalid"
        # The tokens: a dance, then each state
        rt = request_token(srv)
        assert problem_of(access_token(srv, rt, "v")) == "permission_unknown"
        verifier = services(store).tokens.authorize(rt["oauth_token"], "alice").verifier
        r = access_token(srv, rt, verifier)
        assert r.status_code == 200, r.text
        at = {k: v[0] for k, v in parse_qs(r.text).items()}
        assert problem_of(access_token(srv, rt, verifier)) == "token_used"
        denied = request_token(srv)
        services(store).tokens.deny(denied["oauth_token"], "bob")
        assert problem_of(access_token(srv, denied, "denied")) == "permission_denied"
        fixed = {"nonce": "samenonce", "timestamp": str(int(time.time()))}
        assert whoami(srv, at, **fixed).status_code == 200
        assert problem_of(whoami(srv, at, **fixed)) == "nonce_used"
        assert problem_of(whoami(srv, {"oauth_token": "not-a-token-at-all",
                                       "oauth_token_secret": "x"})) == "token_rejected"
        # PLAINTEXT with the right consumer secret and a wrong token secret
        plain = whoami(srv, {"oauth_token": at["oauth_token"], "oauth_token_secret": "wrong"},
                       signature_method="PLAINTEXT")
        assert problem_of(plain) == "signature_invalid"
        expire_token(store, at["oauth_token"])
        assert problem_of(whoami(srv, at)) == "token_expired"
        services(store).tokens.revoke(at["oauth_token"])
        assert problem_of(whoami(srv, at)) == "token_revoked"
        # The consumer's permissions
        assert problem_of(whoami(srv)) == "consumer_key_rejected"
        assert problem_of(call(srv, "/rest/whoami?xoauth_requestor_id=carol", key=TWO_LO)
                          ) == "user_refused"
        for _ in range(3):  # accepted, 100 s behind: the clock's samples
            assert whoami(srv, key=TWO_LO, timestamp=str(int(time.time()) - 100)
                          ).status_code == 200
        srv.engine.refusal_log.flush()

    rows = list(services(store).refusals.iter())
    by_problem: dict[str, list[Any]] = {}
    for row in rows:
        by_problem.setdefault(row.problem, []).append(row)
    produced = set(STATUS) - {"consumer_key_refused"}  # temporary throttling: never made
    assert set(by_problem) == produced | {NO_OAUTH}
    for row in rows:
        assert row.method in ("GET", "POST") and row.client_addr == "127.0.0.1"
        assert row.url.startswith(PUBLIC + "/") and "?" not in row.url
        assert row.seen_url.startswith(srv.base + "/base/")
        assert row.listen_url.startswith(srv.base + "/base/")
        assert row.advice and row.answered == (row.problem if row.problem != NO_OAUTH
                                               else NO_OAUTH)
        if row.problem != "signature_invalid":
            assert row.base_string is None and row.signature is None

    ts = by_problem["timestamp_refused"][0]
    assert ts.consumer_key == HMAC_KEY and ts.known and ts.signature_method == "HMAC-SHA1"
    assert ts.offset is not None and -440 <= ts.offset <= -425
    assert ts.timestamp is not None and abs(ts.timestamp - (now - 432)) <= 1
    assert "behind ours; the window is 5 min" in ts.advice
    unknown = by_problem["consumer_key_unknown"][0]
    assert unknown.consumer_key == "nobody" and not unknown.known
    wrong, proxied, plaintext = sorted(by_problem["signature_invalid"], key=lambda r: r.id)
    assert wrong.signature and wrong.base_string and not wrong.truncated
    assert wrong.base_string.startswith("GET&" + quote(PUBLIC + "/rest/whoami", safe=""))
    assert f"oauth_consumer_key%3D{HMAC_KEY}" in wrong.base_string
    # Behind a proxy, what reached us differs from the public URL for every request: the
    # flush's diagnosis says which it was (a wrong secret here, the internal URL there)
    assert wrong.finding is not None and wrong.finding.startswith(
        "none: none of the usual mistakes explains it; tried: internal_url, scheme, ")
    assert "none of the usual mistakes (the internal URL, http vs https," in wrong.advice
    assert "the shared secret" in wrong.advice
    assert f"`tui-oauth consumers rotate-secret {HMAC_KEY}`" in wrong.advice
    assert "body" not in wrong.advice and "KEY" not in wrong.advice  # a GET, no body
    assert "signed http" not in wrong.advice and "may also" not in wrong.advice
    assert proxied.consumer_key == TWO_LO and proxied.finding is not None
    assert proxied.finding.startswith("internal_url: ")
    assert proxied.advice.startswith(f"The consumer signed {srv.base}/base/rest/whoami; this "
                                     f"server checks against {PUBLIC}/rest/whoami. Make the "
                                     "consumer's application sign the URL it is served at "
                                     f"publicly ({PUBLIC}/rest/whoami)")
    assert plaintext.signature_method == "PLAINTEXT" and plaintext.signature is None
    assert plaintext.base_string  # the base string holds no secret
    assert SECRET not in all_text(store)
    token_rows = by_problem["token_revoked"] + by_problem["token_rejected"]
    assert {r.token_prefix for r in token_rows} == {at["oauth_token"][:8] + "\u2026",
                                                   "not-a-to\u2026"}
    # The whole token only inside a signature_invalid's base string (what was signed; no
    # use without its secret), never in the other fields
    assert not [r for r in rows
                if at["oauth_token"] in repr(dataclasses.replace(r, base_string=None))]
    absent = by_problem["parameter_absent"][0]  # the answer's own words, kept and shown
    assert absent.detail and absent.detail.startswith("Missing: oauth_signature_method")
    assert absent.advice.endswith(absent.detail)
    assert "impersonat" in by_problem["user_refused"][0].advice
    method = by_problem["signature_method_rejected"][0]
    assert "signed with RSA-SHA1" in method.advice
    assert f"consumers show {shlex.quote(method.consumer_key)}`" in method.advice
    assert "Authorization header" in by_problem[NO_OAUTH][0].advice

    clock = services(store).refusals.clock(TWO_LO)
    assert clock is not None and -102 <= clock.median_offset <= -98
    assert clock.samples >= 3
    assert services(store).refusals.clock("nobody") is None  # unknown keys are not followed
    summary = services(store).refusals.summary(HMAC_KEY)
    assert summary.total == sum(summary.counts.values()) == len(
        [r for r in rows if r.consumer_key == HMAC_KEY])


def test_behind_a_proxy_that_keeps_the_host_the_finding_tells_secret_from_url(
        sqlite_store: Store) -> None:
    """nginx `proxy_set_header Host $host`: every request reaches us as
    http://jira.example.com/...; a wrong secret is said so, and a consumer that signed
    the internal address is found through the address the server listens on."""
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    with running_server(sqlite_store, public_url=PUBLIC) as srv:
        assert problem_of(whoami(srv, secret="wrong", host="jira.example.com")
                          ) == "signature_invalid"
        assert problem_of(call(srv, "/rest/whoami", signed_url=srv.base + "/base",
                               host="jira.example.com")) == "signature_invalid"
        r = whoami(srv, secret="wrong")  # the answer names the URL checked against
        assert (f"This server signs against {PUBLIC}/rest/whoami; sign exactly that URL"
                in r.headers["WWW-Authenticate"].replace("%20", " ").replace("%3A", ":")
                .replace("%2F", "/").replace("%3B", ";"))
        srv.engine.refusal_log.flush()
    wrong, internal, _again = sorted(services(sqlite_store).refusals.list(), key=lambda r: r.id)
    assert wrong.seen_url == "http://jira.example.com/base/rest/whoami"
    assert wrong.finding is not None and wrong.finding.startswith(
        "none: none of the usual mistakes explains it; tried: internal_url, ")
    assert "(rotated? another consumer's?)" in wrong.advice
    assert "consumer's configuration" in wrong.advice and "consumers show" not in wrong.advice
    assert "127.0.0.1" not in wrong.advice and "signed http" not in wrong.advice
    assert internal.listen_url == srv.base + "/base/rest/whoami"
    assert internal.finding == (f"internal_url: The consumer signed {srv.base}/base/rest/"
                                f"whoami; this server checks against {PUBLIC}/rest/whoami.")
    assert f"The consumer signed {srv.base}/base/rest/whoami;" in internal.advice
    assert "`serve --public-url` instead only if every client" in internal.advice
    # the check from the record finds it too (the console's and `refusals show`'s)
    report = services(sqlite_store).diagnostics.check_refusal(internal.id)
    assert report.mistake is not None and report.mistake.code == "internal_url"
    assert report.mistake.signed_url == srv.base + "/base/rest/whoami"
    port = srv.base.rsplit(":", 1)[1]
    assert [r.id for r in services(sqlite_store).refusals.list(text=f":{port}/")] == [
        r.id for r in sorted(services(sqlite_store).refusals.list(), key=lambda r: -r.id)]


def whoami_plain(srv: Server) -> requests.Response:
    return requests.get(srv.base + "/base/rest/whoami", timeout=10)


def test_a_flood_of_unknown_keys_stays_bounded(sqlite_store: Store) -> None:
    add_hmac_consumer(sqlite_store, HMAC_KEY, SECRET)
    settings = ProviderSettings(refusal_rows_per_consumer=10)
    with running_server(sqlite_store, public_url=PUBLIC, settings=settings) as srv, \
            requests.Session() as http:
        for i in range(150):
            signer = Client(f"junk-{i}", client_secret="x")
            _u, headers, _b = signer.sign(PUBLIC + "/rest/whoami")
            r = http.get(srv.base + "/base/rest/whoami", headers=headers, timeout=10)
            assert problem_of(r) == "consumer_key_unknown"
            if i % 50 == 49:
                srv.engine.refusal_log.flush()
        assert problem_of(whoami(srv, secret="wrong")) == "signature_invalid"
        srv.engine.refusal_log.flush()
        assert srv.engine.refusal_log.dropped == 0
    assert count(sqlite_store, "refusals", "bucket = ''") == 10
    assert count(sqlite_store, "refusals", "bucket = :b", b=HMAC_KEY) == 1
    assert [r.consumer_key for r in services(sqlite_store).refusals.list(consumer="junk-149")] == [
        "junk-149"]  # the newest kept
    # only the configured consumer's clock is followed
    assert count(sqlite_store, "consumer_clock") == 1
    assert services(sqlite_store).refusals.clock(HMAC_KEY) is not None


def test_the_recorder_bounds_and_switch(store: Store) -> None:
    sqlite_store = store  # both engines: the flush's insert, cap and clock upsert
    add_hmac_consumer(store, HMAC_KEY, SECRET)
    log = RefusalLog(sqlite_store, max_pending=5, keep=3)
    for _ in range(8):
        log.record(Problem("nonce_used"), method="GET", url="u", seen_url="s", client_addr="a")
    assert (log.pending, log.dropped) == (5, 3)
    assert log.flush() == 5 and log.pending == 0 and log.flush() == 0
    assert count(sqlite_store, "refusals") == 3  # the cap of the bucket, after the flush
    now = int(time.time())
    for offset in (-30, -10, -20):  # a known consumer's clock: the median, upserted
        log.sample(HMAC_KEY, now + offset, now)
    log.sample("nobody", now, now)
    log.flush()
    clock = services(store).refusals.clock(HMAC_KEY)
    assert clock is not None and (clock.median_offset, clock.samples) == (-20, 3)
    log.sample(HMAC_KEY, now + 40, now)
    log.flush()
    clock = services(store).refusals.clock(HMAC_KEY)
    assert clock is not None and clock.samples == 4 and clock.median_offset == -20
    assert services(store).refusals.clock("nobody") is None and count(store, "consumer_clock") == 1
    off = ProviderEngine(sqlite_store, PUBLIC, settings=ProviderSettings(refusal_log="off"))
    try:
        off.refusal_log.record(Problem("nonce_used"), method="GET", url="u", seen_url="s",
                               client_addr="a")
        off.refusal_log.sample(HMAC_KEY, int(time.time()))
        assert not off.refusal_log.has_work and off.refusal_log.flush() == 0
    finally:
        off.close()
    # The flush diagnoses at most max_diagnosed signature_invalid records
    diagnosing = RefusalLog(sqlite_store, max_diagnosed=1,
                            keys=lambda key, token: Keys((SECRET,), (), None, None))
    base = ("GET&https%3A%2F%2Fpub.example%2Fr&oauth_consumer_key%3Dpartner%26oauth_nonce"
            "%3Dn%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1%26"
            "oauth_version%3D1.0")
    for _ in range(2):
        problem = Problem("signature_invalid")
        problem.sent = Sent(HMAC_KEY, "", "HMAC-SHA1", 1, base, "bm90LWl0")
        diagnosing.record(problem, method="GET", url="https://pub.example/r",
                          seen_url="http://127.0.0.1:9/r", client_addr="a",
                          listen_url="http://127.0.0.1:9/r")
    diagnosing.flush()
    findings = [r.finding for r in services(store).refusals.list(problem="signature_invalid",
                                                                 consumer=HMAC_KEY)]
    assert findings[0] is None and findings[1] is not None
    assert findings[1].startswith("none: none of the usual mistakes explains it; tried: ")
    # A base string past 16 KiB is cut and says so
    problem = Problem("signature_invalid")
    problem.sent = Sent("k", "", "HMAC-SHA1", None, "x" * (20 * 1024), "sig")
    log.record(problem, method="POST", url="u", seen_url="s", client_addr="a")
    log.flush()
    row = services(sqlite_store).refusals.list(limit=1)[0]
    assert row.truncated and row.base_string is not None
    assert len(row.base_string) == 16 * 1024


# doctor: our own clock ----------------------------------------------------------------------


def fake_tool(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def test_doctor_says_whether_our_clock_is_synchronised(
        sqlite_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(The clock is the host's: one engine is enough.)"""
    from tui_oauth.core.services import doctor

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(doctor, "CLOCK_PROBE_TIMEOUT", 0.3)

    def clock() -> Any:
        report = doctor.DoctorReport()
        doctor._clock_check(report)
        [check] = report.checks
        return check

    assert clock().status == doctor.INFO and "cannot tell" in clock().message  # no tools
    fake_tool(tmp_path, "timedatectl", 'echo yes')
    assert (clock().status, clock().message) == (doctor.OK, "synchronised (NTP, says timedatectl)")
    fake_tool(tmp_path, "timedatectl", 'echo no')
    warned = clock()
    assert warned.status == doctor.WARN and "timestamp_refused" in warned.message
    assert warned.fix and "set-ntp" in warned.fix
    # No systemd (a container): timedatectl fails; chronyc can tell
    fake_tool(tmp_path, "timedatectl", 'echo "System has not been booted with systemd" >&2; '
              "exit 1")
    fake_tool(tmp_path, "chronyc", 'printf "Reference ID    : 0.0.0.0 ()\\n'
              'Leap status     : Not synchronised\\n"')
    assert clock().status == doctor.WARN and "chronyc" in clock().message
    fake_tool(tmp_path, "chronyc", 'printf "Leap status     : Normal\\n"')
    assert clock().status == doctor.OK
    # A probe that hangs is given up: doctor goes on, and cannot tell
    fake_tool(tmp_path, "timedatectl", "exec /bin/sleep 30")
    fake_tool(tmp_path, "chronyc", "exec /bin/sleep 30")
    assert clock().status == doctor.INFO
    assert [c for c in services(sqlite_store).doctor.run().checks if c.name == "clock"]
