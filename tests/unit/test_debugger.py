"""The signature debugger (core/provider/debugger.py): requests signed deliberately
wrongly, the way consumers in the field get them wrong, and the mistake it names.

Pure functions: no store, no keyring.  Requests are signed with oauthlib's Client
where it can make the mistake, and by hand (oauthlib's base string and signature
functions) where it signs correctly whatever it is given (a default port, '+')."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from oauthlib.oauth1 import Client
from oauthlib.oauth1.rfc5849 import signature as sig

from tests.helpers import pem_private, rsa_key
from tui_oauth.core.errors import ValidationError
from tui_oauth.core.provider import debugger as d
from tui_oauth.core.provider.rfc5849 import signature_base_string

PUBLIC = "https://jira.example.com"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def client(secret: str | None = "cs", token: str | None = "tok",  # noqa: S107
           token_secret: str | None = "ts", **kw: Any) -> Client:  # noqa: S107
    return Client("ck", client_secret=secret, resource_owner_key=token,
                  resource_owner_secret=token_secret, **kw)


def as_text(method: str, uri: str, headers: dict[str, str], body: str | None = None) -> str:
    """The short form: METHOD URL, header lines, a blank line, the body."""
    lines = [f"{method} {uri}", *(f"{k}: {v}" for k, v in headers.items()), ""]
    return "\n".join(lines) + "\n" + (body or "")


def signed(url: str, method: str = "GET", body: str | None = None,
           headers: dict[str, str] | None = None, cl: Client | None = None,
           send_to: str | None = None) -> d.SentRequest:
    uri, h, b = (cl or client()).sign(url, http_method=method, body=body, headers=headers)
    if send_to is not None:
        uri = send_to
    return d.parse_request(as_text(method, uri, h, b))


def by_hand(method: str, base_uri: str, params: list[tuple[str, str]], *,
            encode: Any = None, secret: str = "cs", token_secret: str = "ts",  # noqa: S107
            ) -> str:
    """An Authorization header signed over ``base_uri`` taken as it is, its parameters
    encoded by ``encode`` (the consumer's own, wrong, way)."""
    oauth = [("oauth_consumer_key", "ck"), ("oauth_nonce", "n0nce"),
             ("oauth_signature_method", "HMAC-SHA1"), ("oauth_timestamp", str(int(time.time()))),
             ("oauth_token", "tok"), ("oauth_version", "1.0")]
    enc = encode or (lambda s: quote(s, safe="~"))
    normalized = "&".join(f"{n}={v}" for n, v in sorted((enc(n), enc(v))
                                                          for n, v in oauth + params))
    base = sig.signature_base_string(method, base_uri, normalized)
    signature = sig.sign_hmac_sha1_with_client(base, client(secret=secret,
                                                            token_secret=token_secret))
    return "OAuth " + ", ".join(f'{n}="{quote(v, safe="~")}"'
                                for n, v in [*oauth, ("oauth_signature", signature)])


def check(sent: d.SentRequest, **kw: Any) -> d.Report:
    kw.setdefault("public_url", PUBLIC)
    kw.setdefault("secrets", ["cs"])
    kw.setdefault("token_secret", "ts")
    return d.check(sent, **kw)


def mistake(report: d.Report) -> str | None:
    assert not report.matches, report
    return report.mistake.code if report.mistake else None


# Matches ---------------------------------------------------------------------------------


def test_a_correct_hmac_request_matches_and_reports_the_server_base_string() -> None:
    sent = signed(f"{PUBLIC}/rest/api/2/issue?q=a%20b", "POST", body="x=1&y=two%20words",
                  headers=FORM)
    report = check(sent)
    assert report.matches and report.mistake is None
    assert report.base_string.startswith("POST&https%3A%2F%2Fjira.example.com%2Frest%2Fapi"
                                         "%2F2%2Fissue&")
    assert "q%3Da%2520b" in report.base_string and "y%3Dtwo%2520words" in report.base_string
    assert report.url == f"{PUBLIC}/rest/api/2/issue" and report.token == "tok"


def test_the_server_base_string_is_against_the_public_url_with_its_path_prefix() -> None:
    # Behind a proxy that strips /jira: the request reaches /rest/x, signed as public.
    public = "https://example.com/jira"
    sent = signed(f"{public}/rest/x", send_to="http://10.0.0.5:8080/rest/x")
    report = check(sent, public_url=public)
    assert report.matches, report
    assert report.url == "https://example.com/jira/rest/x"


def test_a_wrong_secret_matches_nothing_and_names_no_mistake() -> None:
    report = check(signed(f"{PUBLIC}/rest/x"), secrets=["another"])
    assert mistake(report) is None
    assert "internal_url" in report.tried and "stale_token" in report.tried


# The usual mistakes ------------------------------------------------------------------------


def test_the_internal_url_is_named_with_both_urls() -> None:
    sent = signed("http://127.0.0.1:8080/rest/api/2/myself")
    report = check(sent)
    assert mistake(report) == "internal_url"
    assert report.mistake is not None
    assert "http://127.0.0.1:8080/rest/api/2/myself" in report.mistake.what
    assert f"{PUBLIC}/rest/api/2/myself" in report.mistake.what
    assert report.mistake.base_string and report.mistake.base_string.startswith(
        "GET&http%3A%2F%2F127.0.0.1%3A8080")


def test_the_internal_url_from_a_raw_request_s_host_header() -> None:
    _, h, _ = client().sign("http://127.0.0.1:8080/rest/x")
    raw = ("GET /rest/x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
           f"Authorization: {h['Authorization']}\r\n\r\n")
    assert mistake(check(d.parse_request(raw))) == "internal_url"


def test_http_instead_of_https() -> None:
    sent = signed("http://jira.example.com/rest/x", send_to=f"{PUBLIC}/rest/x")
    report = check(sent)
    assert mistake(report) == "scheme"
    assert report.mistake is not None and "--public-url" in report.mistake.fix


def test_http_instead_of_https_from_a_raw_request_is_the_scheme_not_the_internal_url(
) -> None:
    _, h, _ = client().sign("http://jira.example.com/rest/x")
    raw = f"GET /rest/x HTTP/1.1\nHost: jira.example.com\nAuthorization: {h['Authorization']}\n"
    assert mistake(check(d.parse_request(raw))) == "scheme"


def test_a_public_url_that_cannot_be_used_is_said() -> None:
    with pytest.raises(ValidationError, match="public URL cannot be used"):
        check(signed(f"{PUBLIC}/x"), public_url="ftp://nope")


def test_https_signed_where_the_server_is_told_http() -> None:
    sent = signed("https://jira.example.com/rest/x", send_to="http://jira.example.com/rest/x")
    assert mistake(check(sent, public_url="http://jira.example.com")) == "scheme"


def test_a_default_port_written_out() -> None:
    header = by_hand("GET", "https://jira.example.com:443/rest/x", [])
    sent = d.parse_request(as_text("GET", f"{PUBLIC}/rest/x", {"Authorization": header}))
    report = check(sent)
    assert mistake(report) == "default_port"
    assert report.mistake is not None and ":443" in report.mistake.what


def test_plus_for_a_space_in_the_base_string() -> None:
    header = by_hand("GET", f"{PUBLIC}/rest/search", [("jql", "project = X")],
                     encode=lambda s: quote_plus(s, safe="~"))
    sent = d.parse_request(as_text("GET", f"{PUBLIC}/rest/search?jql=project%20%3D%20X",
                                   {"Authorization": header}))
    assert mistake(check(sent)) == "plus_for_space"


def test_a_plus_signed_as_a_plus_sign() -> None:
    header = by_hand("GET", f"{PUBLIC}/rest/search", [("q", "a+b")])
    sent = d.parse_request(as_text("GET", f"{PUBLIC}/rest/search?q=a+b",
                                   {"Authorization": header}))
    assert mistake(check(sent)) == "plus_literal"


def test_the_form_body_left_out_of_the_signature() -> None:
    uri, h, _ = client().sign(f"{PUBLIC}/rest/x", http_method="POST")
    sent = d.parse_request(as_text("POST", uri, {**h, **FORM}, "summary=hello&n=1"))
    assert mistake(check(sent)) == "body_left_out"


def test_a_body_signed_that_is_not_form_encoded() -> None:
    uri, h, b = client().sign(f"{PUBLIC}/rest/x", http_method="POST", body="a=1&b=2",
                              headers=FORM)
    h["Content-Type"] = "text/plain"
    report = check(d.parse_request(as_text("POST", uri, h, b)))
    assert mistake(report) == "body_added"
    assert report.mistake is not None and "text/plain" in report.mistake.what


def test_a_rotated_secret_and_one_still_in_its_overlap() -> None:
    sent = signed(f"{PUBLIC}/rest/x", cl=client(secret="old"))
    assert mistake(check(sent, secrets=["new"], old_secrets=["old"])) == "rotated_secret"
    during = check(sent, secrets=["new", "old"])
    assert during.matches and any("previous shared secret" in n for n in during.notes)


def test_a_stale_token_secret_and_the_token_secret_left_out() -> None:
    sent = signed(f"{PUBLIC}/rest/x", cl=client(token_secret="ts-of-tok2"))
    report = check(sent, stale_token_secrets=[("tok1", "x"), ("tok2", "ts-of-tok2")])
    assert mistake(report) == "stale_token"
    assert report.mistake is not None and "tok2" in report.mistake.what
    left_out = signed(f"{PUBLIC}/rest/x", cl=client(token_secret=None))
    assert mistake(check(left_out)) == "token_secret_left_out"


def test_rsa_sha1_matches_and_names_the_internal_url() -> None:
    key = rsa_key(0)
    rsa_client = Client("ck", signature_method="RSA-SHA1", rsa_key=pem_private(key))
    good = signed(f"{PUBLIC}/rest/x", cl=rsa_client)
    assert check(good, secrets=[], public_key=key.public_key(), token_secret=None).matches
    bad = signed("http://127.0.0.1:8080/rest/x", cl=rsa_client)
    report = check(bad, secrets=[], public_key=key.public_key(), token_secret=None)
    assert mistake(report) == "internal_url"
    assert check(good, secrets=[], public_key=None).notes  # no key stored: said


@pytest.mark.parametrize(("signature", "code"), [
    # oauth_signature as written in the header: the good one is "s%26c%20ret&", encoded
    ("s%2526c%2520ret%26", None),
    ("s%2526c%2520ret", "plaintext_no_ampersand"),
    ("s%26c%20ret%26", "plaintext_not_encoded"),
    ("s%252526c%252520ret%2526", "plaintext_double_encoded"),
])
def test_plaintext_specifics(signature: str, code: str | None) -> None:
    header = ('OAuth oauth_consumer_key="ck", oauth_signature_method="PLAINTEXT", '
              f'oauth_timestamp="1", oauth_nonce="n", oauth_signature="{signature}"')
    sent = d.parse_request(as_text("POST", f"{PUBLIC}/plugins/servlet/oauth/request-token",
                                   {"Authorization": header}))
    report = check(sent, secrets=["s&c ret"], token_secret=None)
    if code is None:
        assert report.matches, report
        assert any("PLAINTEXT" in n for n in report.notes)
    else:
        assert mistake(report) == code
        assert report.mistake is not None and report.mistake.base_string is None
    assert "s&c ret" not in repr(report) and "s%26c%20ret" not in repr(report)


def test_plaintext_with_a_rotated_secret() -> None:
    header = ('OAuth oauth_consumer_key="ck", oauth_signature_method="PLAINTEXT", '
              'oauth_timestamp="1", oauth_nonce="n", oauth_signature="old%26"')
    sent = d.parse_request(as_text("GET", f"{PUBLIC}/x", {"Authorization": header}))
    assert mistake(check(sent, secrets=["new"], old_secrets=["old"], token_secret=None)
                   ) == "rotated_secret"


# A refusal record ----------------------------------------------------------------------


def _record(sent: d.SentRequest, public_url: str) -> tuple[str, str]:
    """(base string, signature) as the server records them for signature_invalid."""
    from tui_oauth.core.provider.rfc5849 import parse_request

    path = sent.url.split("://", 1)[1].split("/", 1)[1]
    uri = d.public_uri(public_url, "/" + path.split("?")[0],
                       path.split("?", 1)[1] if "?" in path else "")
    request = parse_request(uri, sent.method, sent.body, dict(sent.headers))
    return request.tui_base_strings[0], request.signature


def test_a_refusal_record_rebuilt_and_checked() -> None:
    sent = signed("http://127.0.0.1:8080/rest/x?jql=a%20b&n=1")
    base, signature = _record(sent, PUBLIC)
    rebuilt = d.request_from_refusal(base_string=base, signature=signature,
                                     seen_url="http://127.0.0.1:8080/rest/x",
                                     url=f"{PUBLIC}/rest/x")
    report = check(rebuilt, public_url=None, server_url=f"{PUBLIC}/rest/x")
    assert report.base_string == base
    assert mistake(report) == "internal_url"
    good = signed(f"{PUBLIC}/rest/x?n=1")
    base, signature = _record(good, PUBLIC)
    rebuilt = d.request_from_refusal(base_string=base, signature=signature,
                                     seen_url="http://127.0.0.1:8080/rest/x",
                                     url=f"{PUBLIC}/rest/x")
    assert check(rebuilt, public_url=None, server_url=f"{PUBLIC}/rest/x").matches
    with pytest.raises(ValidationError, match="base string cannot be read"):
        d.request_from_refusal(base_string="GET&x", signature="s", seen_url="", url="u")


def test_behind_a_host_keeping_proxy_the_listen_address_is_tried() -> None:
    """nginx keeps Host: the request reached http://jira.example.com/..., the consumer
    signed the internal address; only the listen address (http or https) finds it."""
    sent = signed("http://127.0.0.1:8080/rest/x")
    base, signature = _record(sent, PUBLIC)
    rebuilt = d.request_from_refusal(base_string=base, signature=signature,
                                     seen_url="http://jira.example.com/rest/x",
                                     url=f"{PUBLIC}/rest/x")
    kw: dict[str, Any] = {"public_url": None, "server_url": f"{PUBLIC}/rest/x"}
    assert mistake(check(rebuilt, **kw)) is None
    listen = d.listen_candidates("https://127.0.0.1:8080/rest/x")
    assert listen == ["https://127.0.0.1:8080/rest/x", "http://127.0.0.1:8080/rest/x"]
    report = check(rebuilt, internal_urls=listen, **kw)
    assert report.mistake is not None and report.mistake.code == "internal_url"
    assert report.mistake.signed_url == "http://127.0.0.1:8080/rest/x"
    assert d.finding(report) == ("internal_url: The consumer signed http://127.0.0.1:8080/"
                                 f"rest/x; this server checks against {PUBLIC}/rest/x.")
    # the fix is on the client; --public-url only when every client uses the other URL
    assert report.mistake.fix.startswith("Make the consumer's application sign the URL it "
                                         f"is served at publicly ({PUBLIC}/rest/x)")
    assert "base URL" not in report.mistake.fix
    wrong = check(rebuilt, internal_urls=listen, secrets=["another"], **kw)
    assert d.finding(wrong) == ("none: none of the usual mistakes explains it; tried: "
                                "internal_url, scheme, port, plus_for_space, stale_token, "
                                "token_secret_left_out")
    assert d.TRIED_WORDS["internal_url"] == "the internal URL"


def test_the_record_s_advice_follows_the_finding() -> None:
    from tui_oauth.core.provider.problems import advise

    url, seen = f"{PUBLIC}/rest/x", "http://127.0.0.1:8080/rest/x"
    found = advise("signature_invalid", url=url, seen_url=seen,
                   finding=f"internal_url: The consumer signed {seen}; this server checks "
                           f"against {url}.")
    assert found.startswith(f"The consumer signed {seen}; this server checks against {url}. "
                            "Make the consumer's application sign the URL it is served at "
                            f"publicly ({url}): its configured server URL is probably the "
                            "internal one.")
    none = advise("signature_invalid", url=url, seen_url=seen, signature_method="HMAC-SHA1",
                  finding="none: none of the usual mistakes explains it")
    assert "none of the usual mistakes" in none and "(rotated? another consumer's?)" in none
    assert seen not in none and "shared secret" in none
    rsa = advise("signature_invalid", url=url, signature_method="RSA-SHA1",
                 finding="none: none of the usual mistakes explains it")
    assert "RSA public key" in rsa
    other = advise("signature_invalid", url=url, finding="scheme: The consumer signed an "
                   "http URL.")
    assert other.startswith("The consumer signed an http URL.")
    guess = advise("signature_invalid", url=url, seen_url=seen, listen_url=seen)
    assert guess.startswith("The signature does not match. What usually differs")
    assert guess.endswith(f"It may also have signed the URL it reached: {seen}.")
    # the public URL itself, written otherwise, is no other URL
    assert "may also" not in advise("signature_invalid", url=url,
                                    seen_url="https://JIRA.example.com:443/rest/x")



def test_a_raw_request_with_the_public_host_signed_over_the_listen_address() -> None:
    """A proxy keeps Host: jira.example.com; the consumer signed serve's listen address.
    Only the listen URL (serve.listen_url, or --internal-url) names it, also behind a
    public path prefix the proxy strips."""
    _, h, _ = client().sign("http://127.0.0.1:8080/rest/x")
    raw = ("GET /rest/x HTTP/1.1\r\nHost: jira.example.com\r\n"
           f"Authorization: {h['Authorization']}\r\n\r\n")
    sent = d.parse_request(raw)
    assert mistake(check(sent)) is None
    for base in ("http://127.0.0.1:8080", "https://127.0.0.1:8080/"):
        report = check(sent, internal_bases=[base])
        assert mistake(report) == "internal_url", base
        assert report.mistake is not None
        assert report.mistake.signed_url == "http://127.0.0.1:8080/rest/x"
    prefixed = d.parse_request(raw.replace("GET /rest/x", "GET /jira/rest/x"))
    report = check(prefixed, public_url=f"{PUBLIC}/jira",
                   internal_bases=["http://127.0.0.1:8080"])
    assert mistake(report) == "internal_url"
    assert check(sent, internal_bases=["not a url"]).mistake is None


def test_the_no_match_advice_lists_what_was_tried_and_names_the_consumer() -> None:
    from tui_oauth.core.provider.problems import advise

    report = check(signed(f"{PUBLIC}/rest/x"), secrets=["another"])
    found = d.finding(report)
    assert found.startswith("none: none of the usual mistakes explains it; tried: ")
    advice = advise("signature_invalid", url=f"{PUBLIC}/rest/x", finding=found,
                    signature_method="HMAC-SHA1", consumer_key="jira:1354 $(x)")
    words = ", ".join(d.TRIED_WORDS[t] for t in report.tried)
    assert f"none of the usual mistakes ({words}) explains it" in advice
    assert "body" not in advice  # a GET without a body: the body was not tried
    assert "`tui-oauth consumers rotate-secret 'jira:1354 $(x)'`" in advice
    assert "consumer's admin" in advice and "consumer's configuration" in advice
    assert "KEY" not in advice and "consumers show" not in advice
    assert "<key>" in advise("signature_invalid", finding=found, consumer_key="a\x1bb")
    rsa = advise("signature_invalid", finding=found, signature_method="RSA-SHA1",
                 consumer_key="k")
    assert "rotate-secret" not in rsa and "`tui-oauth consumers show k`" in rsa
    # an older record's finding (no tried list): no list, still the advice
    old = advise("signature_invalid", finding="none: none of the usual mistakes explains it",
                 consumer_key="k")
    assert "none of the usual mistakes explains it" in old and "rotate-secret k" in old


# Parsers ---------------------------------------------------------------------------------


def test_raw_http_with_crlf_content_length_and_a_folded_header() -> None:
    raw = ("POST /rest/x?a=1 HTTP/1.1\r\nHost: jira.example.com\r\n"
           "X-Forwarded-Proto: https\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           "X-Long: one\r\n  two\r\nContent-Length: 7\r\n\r\nb=2&c=3\r\n")
    sent = d.parse_request(raw)
    assert (sent.method, sent.url, sent.body) == ("POST", f"{PUBLIC}/rest/x?a=1", b"b=2&c=3")
    assert sent.header("x-long") == "one two" and sent.scheme_known


def test_curl_with_continuations_and_its_options() -> None:
    text = """$ curl -sS -X PUT \\
      --url 'https://jira.example.com/rest/x?a=1' \\
      -H 'Authorization: OAuth oauth_consumer_key="ck"' \\
      -HAccept:application/json \\
      -d 'b=2' --data-urlencode 'c=d e' --data-raw "f=@g" -A agent
    """
    sent = d.parse_request(text)
    assert sent.method == "PUT" and sent.url == f"{PUBLIC}/rest/x?a=1"
    assert sent.body == b"b=2&c=d%20e&f=@g"
    assert sent.header("content-type") == "application/x-www-form-urlencoded"
    assert sent.header("accept") == "application/json"
    got = d.parse_request("curl -G https://jira.example.com/s -d q=1 --data-urlencode 'r=a b'")
    assert (got.method, got.url, got.body) == ("GET", f"{PUBLIC}/s?q=1&r=a%20b", b"")
    assert d.parse_request("curl -d x=1 jira.example.com/p").method == "POST"


def test_a_curl_request_checked_end_to_end() -> None:
    uri, h, b = client().sign(f"{PUBLIC}/rest/x", http_method="POST", body="a=1 2".replace(
        " ", "%20"), headers=FORM)
    text = f"curl -X POST \\\n  -H '{'Authorization'}: {h['Authorization']}' \\\n" \
           f"  --data '{b}' \\\n  '{uri}'\n"
    assert check(d.parse_request(text)).matches


@pytest.mark.parametrize(("text", "says"), [
    ("", "it is empty"),
    ("hello there world\n", "is not METHOD URL"),
    ("GET /x HTTP/1.1\nno colon here\n", "line 2"),
    ("GET /x HTTP/1.1\n\n", "no Host header"),
    ("GET ftp://x/y\n", "not an absolute http(s) URL"),
    ("curl -H 'Authorization: x'", "has no URL"),
    ("curl 'https://x/y", "check its quotes"),
    ("curl -d @body.txt https://x/y", "read from a file"),
    ("curl -F a=b https://x/y", "not supported"),
    ("curl https://x/a https://x/b", "two URLs"),
])
def test_unreadable_input_says_what_and_how(text: str, says: str) -> None:
    with pytest.raises(ValidationError) as caught:
        d.parse_request(text)
    assert says in str(caught.value)
    assert "curl command line" in str(caught.value)  # the forms it reads


def test_a_request_without_a_signature_is_refused_clearly() -> None:
    with pytest.raises(ValidationError, match="no OAuth signature"):
        check(d.parse_request("GET https://jira.example.com/x\n"))


def test_the_server_base_string_is_the_provider_s() -> None:
    sent = signed(f"{PUBLIC}/a/b?z=1&a=2")
    expected = signature_base_string("GET", f"{PUBLIC}/a/b", [
        (k, v) for k, v in _params(sent) if k != "oauth_signature"] + [("z", "1"), ("a", "2")])
    assert check(sent).base_string == expected


def _params(sent: d.SentRequest) -> list[tuple[str, str]]:
    from tui_oauth.core.provider.rfc5849 import authorization_params

    return authorization_params(sent.header("authorization") or "")[1]
