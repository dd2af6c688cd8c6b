"""OAuth Problem Reporting: every refusal as an ``oauth_problem`` with its HTTP status.

The values and statuses follow the Problem Reporting extension as Atlassian
uses it (shared/spec/oauth-admin.md)::

    400  version_rejected parameter_absent parameter_rejected timestamp_refused
         signature_method_rejected
    401  nonce_used token_used token_expired token_revoked token_rejected
         signature_invalid consumer_key_unknown consumer_key_rejected
         permission_unknown permission_denied
    503  consumer_key_refused user_refused
"""

from __future__ import annotations

from oauthlib.oauth1.rfc5849.utils import escape

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
    "consumer_key_rejected": "The consumer key is not acceptable.",
    "permission_unknown": "The user has not approved this request token yet.",
    "permission_denied": "The user denied access.",
    "consumer_key_refused": "This consumer may not use this kind of request.",
    "user_refused": "This consumer may not act as the user it names.",
}


class Problem(Exception):
    """A refusal: raised inside the engine, answered by the web layer."""

    def __init__(self, problem: str, advice: str | None = None,
                 extra: dict[str, str] | None = None) -> None:
        if problem not in STATUS:
            raise ValueError(f"unknown oauth_problem {problem!r}")
        super().__init__(problem)
        self.problem = problem
        self.advice = advice
        self.extra: dict[str, str] = dict(extra or {})

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
        parts = [f'realm="{escape(realm)}"']
        parts.extend(f'{escape(k)}="{escape(v)}"' for k, v in self.params())
        return "OAuth " + ", ".join(parts)

    def __str__(self) -> str:
        return f"{self.problem}: {self.advice or ADVICE[self.problem]}"


def absent(*names: str) -> Problem:
    return Problem("parameter_absent", f"Missing: {', '.join(names)}.",
                   {"oauth_parameters_absent": "&".join(names)})


def rejected(name: str, why: str) -> Problem:
    return Problem("parameter_rejected", f"{name}: {why}",
                   {"oauth_parameters_rejected": name})
