"""OAuth Problem Reporting: every refusal as an ``oauth_problem`` with its HTTP status.

The values and statuses follow the Problem Reporting extension as Atlassian
uses it (shared/spec/oauth-admin.md)::

    400  version_rejected parameter_absent parameter_rejected timestamp_refused
         signature_method_rejected
    401  nonce_used token_used token_expired token_revoked token_rejected
         signature_invalid consumer_key_unknown consumer_key_rejected
         permission_unknown permission_denied
    503  consumer_key_refused user_refused

``consumer_key_rejected`` is permanent (policy: 3LO or 2LO switched off for this
consumer); ``consumer_key_refused`` is temporary (throttling), which a client may
retry.  A request with no OAuth at all gets a bare :class:`Challenge`.

With the ``problem_detail`` setting at ``minimal`` (:func:`concealed`), the answers
that would tell someone who cannot sign whether a consumer key or token exists
(``consumer_key_unknown``, a consumer's own ``signature_method_rejected``,
``token_rejected`` before the signature) all become ``signature_invalid``, as a
bad signature is; the log still names the real cause.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_from_bytes

STATUS: dict[str, int] = {
    "version_rejected": 400,
    "parameter_absent": 400,
    "parameter_rejected": 400,
    "timestamp_refused": 400,
    "signature_method_rejected": 400,
    "nonce_used": 401,
    "token_used": 401,
    "token_expired": 401,
    "token_revoked": 401,
    "token_rejected": 401,
    "signature_invalid": 401,
    "consumer_key_unknown": 401,
    "consumer_key_rejected": 401,
    "permission_unknown": 401,
    "permission_denied": 401,
    "consumer_key_refused": 503,
    "user_refused": 503,
}

#: Plain-words advice for each problem, for people reading logs and bodies.
ADVICE: dict[str, str] = {
    "version_rejected": "Only OAuth 1.0 is supported: send oauth_version=1.0 or leave it out.",
    "parameter_absent": "A required OAuth parameter is missing.",
    "parameter_rejected": "A parameter is malformed.",
    "timestamp_refused": "The timestamp is outside the accepted window; check the client's clock.",
    "signature_method_rejected": "That signature method is not accepted here.",
    "nonce_used": "This nonce was already used with this timestamp; send a fresh nonce.",
    "token_used": "The request token was already exchanged; start the dance again.",
    "token_expired": "The token has expired; get a new one.",
    "token_revoked": "The token was revoked by the user or an administrator.",
    "token_rejected": "The token is not known here, or not for this consumer.",
    "signature_invalid": (
        "The signature does not match. Sign the public URL exactly as the client sees it "
        "(scheme, host, port, path) with the right key or secret."
    ),
    "consumer_key_unknown": "No consumer with this key is configured here.",
    "consumer_key_rejected": "This consumer may not make this kind of request.",
    "permission_unknown": "The user has not approved this request token yet.",
    "permission_denied": "The user denied access.",
    "consumer_key_refused": "This consumer is refused for now; try again later.",
    "user_refused": "This consumer may not act as the user it names.",
}


#: The one answer, in ``minimal`` mode, to whoever cannot prove who they are.
CONCEALED_ADVICE = (
    "The request could not be authenticated: check the consumer key, the signature "
    "method, the token and the signature (sign the public URL exactly as the client "
    "sees it, with the right key or secret)."
)


def signature_advice(uri: str) -> str:
    """``signature_invalid``'s oauth_problem_advice with ``problem_detail=full``: the URL
    this server checked against (public: its ``--public-url`` + the path; no query)."""
    url = uri.split("?", 1)[0].split("#", 1)[0]
    return (f"The signature does not match. This server signs against {url}; sign exactly "
            "that URL (scheme, host, port, path) with the right key or secret.")


#: The debugger's mistake codes in plain words (its "Tried", the CLI's and the
#: console's, and the advice's list of what was tried): the one place that says them.
TRIED_WORDS = {
    "internal_url": "the internal URL", "scheme": "http vs https", "port": "the port",
    "plus_for_space": "+ vs %20", "body_left_out": "the body left out",
    "body_added": "the body added", "rotated_secret": "a rotated secret",
    "stale_token": "a stale token", "token_secret_left_out": "no token secret",
    "plaintext": "PLAINTEXT encoding",
}


def shell_word(value: str) -> str:
    """``value`` quoted for a shell example (``'jira:1354'``); ``<key>`` when it holds
    something not printable."""
    import shlex

    if not value or not value.isprintable():
        return "<key>"
    return shlex.quote(value)


#: What the refusal log calls a request with no OAuth at all (:class:`Challenge`).
NO_OAUTH = "no_oauth"


def duration(seconds: int) -> str:
    """``432`` -> ``7 min 12 s``; ``7200`` -> ``2 h``; ``90061`` -> ``1 d 1 h`` (the two
    largest units that are not zero)."""
    left = abs(int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {unit}")
    return " ".join(parts[:2]) or "0 s"


def offset_words(offset: int) -> str:
    """A clock's offset from ours in words: ``7 min 12 s behind``, ``3 s ahead``,
    ``in step`` (0)."""
    if offset == 0:
        return "in step"
    return f"{duration(offset)} {'behind' if offset < 0 else 'ahead'}"


def advise(problem: str, *, offset: int | None = None, window: int = 300,
           url: str | None = None, seen_url: str | None = None,
           signature_method: str | None = None, detail: str | None = None,
           finding: str | None = None, listen_url: str | None = None,
           consumer_key: str | None = None) -> str:
    """Advice for one refusal in the log, in plain words, specific to what it recorded
    (``problem`` is the real cause: Problem.cause; ``detail``: what the server told the
    client beyond it, when it was more than the problem's usual words; ``finding``: for
    signature_invalid, what the debugger found when the record was written, "code:
    words", or None when it was not diagnosed; ``consumer_key``: the record's, for the
    commands the advice names).  The one place that says it; the
    README's table follows it."""
    if problem == NO_OAUTH:
        return ("The request carried no OAuth parameters at all: the client did not sign "
                "it, or a proxy in front of this server dropped the Authorization header "
                "(forward it as it is).")
    if problem == "timestamp_refused":
        if offset is None:
            return (f"The timestamp is outside the window ({duration(window)} either side of "
                    "our clock); check the consumer's clock (NTP).")
        if offset > 1000 * 86400 * 365:
            return ("The timestamp looks like milliseconds; send whole seconds since 1970 "
                    f"(the window is {duration(window)}).")
        side = "behind ours" if offset < 0 else "ahead of ours"
        return (f"The consumer's clock is {duration(offset)} {side}; the window is "
                f"{duration(window)}. Set the consumer's clock right (NTP), or check ours "
                "(`tui-oauth doctor`).")
    if problem == "signature_invalid":
        return _signature_advice(url=url, seen_url=seen_url, listen_url=listen_url,
                                 signature_method=signature_method, finding=finding,
                                 consumer_key=consumer_key)
    if problem == "signature_method_rejected" and signature_method:
        return (f"The consumer signed with {signature_method[:40]}, which is not accepted for "
                "it here: sign with the consumer's configured method (`tui-oauth consumers "
                f"show {shell_word(consumer_key or '')}`), PLAINTEXT only over https.")
    if problem == "consumer_key_unknown":
        return ("No consumer with this key is configured here: check the key the client "
                "sends, or add the consumer (`tui-oauth consumers add`).")
    if problem == "nonce_used":
        return ("This nonce was already used with this timestamp: the client replayed a "
                "request or does not make a new nonce for each one.")
    general = FOR_ADMINS.get(problem) or ADVICE.get(problem, "")
    if problem in _OWN_WORDS and detail and detail != general:
        return f"{general} {detail}"
    return general


#: How to fix a consumer that signs an internal URL (the fix is on the client).
_SIGN_PUBLIC = ("Make the consumer's application sign the URL it is served at publicly "
                "({url}): its configured server URL is probably the internal one. Change "
                "`serve --public-url` instead only if every client legitimately uses the "
                "other URL (it would break the others).")


def _signature_advice(*, url: str | None, seen_url: str | None, listen_url: str | None,
                      signature_method: str | None, finding: str | None,
                      consumer_key: str | None = None) -> str:
    key = {"RSA-SHA1": "the RSA public key stored here is not the one the consumer signs "
                       "with",
           "PLAINTEXT": "the consumer secret or token secret sent is not the stored one",
           }.get(signature_method or "", "the shared secret (or the token secret) the "
                                         "consumer signs with is not the one stored here")
    where = url or "its public URL"
    code, _, words = (finding or "").partition(": ")
    if finding and code == "internal_url":
        return f"{words} {_SIGN_PUBLIC.format(url=where)}"
    if finding and code == "none":
        _, _, tried = words.partition("; tried: ")
        names = [TRIED_WORDS.get(t, t.replace("_", " ")) for t in tried.split(", ") if t]
        listed = f" ({', '.join(names)})" if names else ""
        shown = shell_word(consumer_key or "")
        if signature_method == "RSA-SHA1":
            fix = ("Compare the public key stored here (`tui-oauth consumers show "
                   f"{shown}` shows its fingerprint) with the one in the consumer's "
                   "configuration, and check that it signs with this consumer's key.")
        else:
            fix = ("Compare the secret with the one in the consumer's configuration, or "
                   f"issue a new one (`tui-oauth consumers rotate-secret {shown}`) and give "
                   "it to the consumer's admin; check that it signs with this consumer's "
                   "key.")
        return (f"The signature does not match, and none of the usual mistakes{listed} "
                f"explains it: {key} (rotated? another consumer's?). {fix}")
    if finding:
        return (f"{words} `tui-oauth refusals show` checks it again and says how to fix "
                "it.")
    # Not diagnosed (the log's flush diagnoses at most so many, and not PLAINTEXT):
    # the likely causes, the URL the request reached only as a possibility.
    advice = ("The signature does not match. What usually differs: the URL signed (this "
              f"server checks against {where}); the encoding (+ or %20, body parameters left "
              f"out); or {key}. `tui-oauth refusals show` checks it against the stored key.")
    others = [u for u in dict.fromkeys((seen_url, listen_url))
              if u and url and _comparable(u) != _comparable(url)]
    if others:
        advice += f" It may also have signed the URL it reached: {' or '.join(others)}."
    return advice


#: The refusal log's advice (for the admin, not the client) where it is not specific to
#: the record; ADVICE where this has none.
FOR_ADMINS: dict[str, str] = {
    "version_rejected": "The client sent an oauth_version other than 1.0: its OAuth library "
                        "is set up for another protocol version.",
    "parameter_absent": "The client left out a required OAuth parameter (its library is "
                        "misconfigured, or a proxy cut the Authorization header).",
    "parameter_rejected": "A parameter is malformed: the client's OAuth library, or something "
                          "on the way that rewrote the request.",
    "token_used": "The consumer used a request token twice, or an access token after "
                  "renewing it: it must use the newest token.",
    "token_expired": "The token has expired: the consumer must renew the session "
                     "(oauth_session_handle) or ask the user again (settings "
                     "access_token_ttl, request_token_ttl, authorization_ttl).",
    "token_revoked": "The token was revoked (by the user or `tui-oauth tokens revoke`): the "
                     "user must authorize the consumer again.",
    "token_rejected": "The token is not known here (purged, issued by another server, cut "
                      "short) or is another consumer's: `tui-oauth tokens list --consumer "
                      "KEY`.",
    "consumer_key_rejected": "This consumer may not make this kind of request: 3-legged or "
                             "2-legged OAuth is switched off for it (`tui-oauth consumers "
                             "edit KEY`).",
    "permission_unknown": "The consumer asked for an access token before the user approved "
                          "the request token (the authorize page, or `tui-oauth tokens "
                          "authorize`).",
    "permission_denied": "The user denied access; the consumer must start again.",
    "user_refused": "The consumer named a user (xoauth_requestor_id) but may not impersonate "
                    "users: switch impersonation on for it, or have it leave the user out.",
}


#: Problems whose answer's own words (Problem.advice) say more than ADVICE does.
_OWN_WORDS = frozenset({
    "parameter_absent", "parameter_rejected", "version_rejected", "consumer_key_rejected",
    "token_used", "token_expired", "token_rejected", "user_refused"})


def _comparable(url: str) -> str:
    """A URL for comparing the signed one with ours: lower-case scheme and host, without
    a default port."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(
        parts.scheme.lower())) else None
    return f"{parts.scheme.lower()}://{host}{f':{port}' if port else ''}{parts.path}"


def escape(value: str) -> str:
    """Percent-encode (RFC 5849 section 3.6); octets that are not UTF-8 stay octets."""
    return quote_from_bytes(value.encode("utf-8", "surrogateescape"), safe="")


def quoted_string(value: str) -> str:
    """``value`` as an RFC 2617 (RFC 7230 3.2.6) quoted-string, the form RFC 5849
    3.5.1 gives the realm (not percent-encoded): ``\\`` and ``"`` escaped, control
    characters (which a quoted-string cannot hold) left out, and anything beyond
    ASCII percent-encoded (a header is ASCII; the realm is a URL here)."""
    kept = "".join(c if c < "\x7f" else escape(c) for c in value
                   if c.isprintable() or c == " ")
    return '"' + kept.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Problem(Exception):
    """A refusal: raised inside the engine, answered by the web layer.

    ``cause`` is what really went wrong, for the log: the same as ``problem``
    except when :func:`concealed` answered something vaguer.
    """

    def __init__(self, problem: str, advice: str | None = None,
                 extra: dict[str, str] | None = None, *, cause: str | None = None) -> None:
        if problem not in STATUS:
            raise ValueError(f"unknown oauth_problem {problem!r}")
        super().__init__(problem)
        self.problem = problem
        self.advice = advice
        self.extra: dict[str, str] = dict(extra or {})
        self.cause = cause or problem
        #: What the engine parsed from the request (refusals.Sent), for the refusal log.
        self.sent: Any = None

    @property
    def status(self) -> int:
        return STATUS[self.problem]

    def params(self) -> list[tuple[str, str]]:
        out = [("oauth_problem", self.problem)]
        out.extend(sorted(self.extra.items()))
        out.append(("oauth_problem_advice", self.advice or ADVICE[self.problem]))
        return out

    def body(self) -> str:
        return "&".join(f"{escape(k)}={escape(v)}" for k, v in self.params())

    def www_authenticate(self, realm: str) -> str:
        parts = [f"realm={quoted_string(realm)}"]
        parts.extend(f'{escape(k)}="{escape(v)}"' for k, v in self.params())
        return "OAuth " + ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.problem}: {self.advice or ADVICE[self.problem]}"


class Challenge(Problem):
    """No OAuth at all: ``401`` with a bare ``WWW-Authenticate: OAuth realm="..."``
    (RFC 5849 section 3.5.1, as RFC 2617 challenges go), no ``oauth_problem``."""

    def __init__(self) -> None:
        super().__init__("parameter_absent",
                         "This resource needs a request signed with OAuth 1.0a.",
                         cause="no_oauth")

    @property
    def status(self) -> int:
        return 401

    def params(self) -> list[tuple[str, str]]:
        return [("oauth_problem_advice", self.advice or "")]

    def www_authenticate(self, realm: str) -> str:
        return f"OAuth realm={quoted_string(realm)}"

    def __str__(self) -> str:
        return f"no OAuth: {self.advice}"


def concealed(problem: str, advice: str | None, *, minimal: bool) -> Problem:
    """An answer about the consumer key, its method or the token, before the signature
    proved anything: itself with ``problem_detail=full``, else ``signature_invalid``."""
    if not minimal:
        return Problem(problem, advice)
    return Problem("signature_invalid", CONCEALED_ADVICE, cause=problem)


def absent(*names: str) -> Problem:
    return Problem("parameter_absent", f"Missing: {', '.join(names)}.",
                   {"oauth_parameters_absent": "&".join(names)})


def refused_timestamp(window: int, now: int, why: str = "") -> Problem:
    """``timestamp_refused`` with the range accepted now (``oauth_acceptable_timestamps``)."""
    return Problem("timestamp_refused",
                   f"{why}Accepted: whole seconds since 1970, at most {window} seconds either "
                   "side of the server's clock.",
                   {"oauth_acceptable_timestamps": f"{now - window}-{now + window}"})


def rejected(name: str, why: str) -> Problem:
    return Problem("parameter_rejected", f"{name}: {why}",
                   {"oauth_parameters_rejected": name})
