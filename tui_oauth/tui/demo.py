# ruff: noqa: S106 - sample rows, no real secret
"""Fixed sample content for pictures: the README screenshots and the snapshot tests.

Rows are inserted directly with fixed ids, times and keys, so every picture
of the console comes out the same from one run to the next.  Never used on a
real store: :func:`fill_demo_store` refuses a store that already has data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from tui_oauth.core.models import (
    HMAC_SHA1,
    RSA_SHA1,
    AuditEntry,
    Consumer,
    ConsumerClock,
    ConsumerInfo,
    HeldToken,
    Refusal,
    ServiceProvider,
    Token,
    TokenState,
    TokenType,
    consumer_secret_item,
    provider_secret_item,
)
from tui_oauth.core.store import Store

T0 = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
INFO_KEY = "tui-oauth:2f9c1d7e-5b3a-4c61-9e0f-7a8b6c5d4e3f"
INFO_PUBLIC_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA12Fu8WJP7UAHVtLMmIm1pLdtgJiLeZxsha13Npfn/IZ177ec"
    "XuZ/Bba2ZVrF+uI8mrBCyoSpnoQRsqfkngbUwtqJKYkBoHNRAtTxRUtg1ckO7cF7OG5CfpC5YVGxrLcJMBRNA33l6V06"
    "QpopGQ1AXXCWv6twKdXzGnEZ3lACPVuIi6PuccyyFqvWA8C+aNeWeEWgiZN2w/stoA5V9YhhDcuYbcHha4tyGPYXvx+h"
    "Vb3UVHxA3PF2qFDxWQ2uhOMBfQsORxohnneJVYAsM2t65Vdc2FY3x9u4vp9YDhNq8dm259qTS65RPDB7d3Akup0K3Rva"
    "OzBWsQS48YYzpJ0YgQIDAQAB"
)
JIRA_PUBLIC_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwvvZFqK8+KmjAXwEV3LSIBuzShpgls0aNdO4jlNGgcHosSQO"
    "IQbsRniSbPX9Rm1vD9yWUEcmggn56lvCF130GxFR0Tcf3KaLiuRSc6uqBtiZNWsmzns+SAuZwh6QxNchJl50oyftZJmR"
    "L3IhiyjHu2f5ps3jxzxzwklMtHICSUNCUlTHr+Wtt56PdGbv0CT0bDOCJ6vsm5x76McMbuVNVqrUNzqXmiS6+APJsWwY"
    "OcGjAo01moB+XAvJbY5PAVoR07pcajzbC0z+XlBnbhgJt8SykVljNK5YMD03ka3M+19HUtHrjwU5ioIu1J8C4CdjGPV6"
    "jkwrISJHl24qYH8M0wIDAQAB"
)
DISPLAY_URL = "sqlite:////srv/oauth/tui-oauth.db"


def fill_demo_store(store: Store, *, audit_entries: int = 40, secrets: bool = True) -> None:
    """Consumers with tokens, our Consumer Info, two providers and an audit trail."""
    with Session(store.engine, expire_on_commit=False) as s:
        if s.exec(select(Consumer.id)).first() is not None:
            raise ValueError("fill_demo_store only fills an empty store")
        s.add(ConsumerInfo(id=1, key=INFO_KEY, name="Build server (ci.example.com)",
                           description="Nightly reports pulled from JIRA and Confluence",
                           callback_url="https://ci.example.com/oauth/callback",
                           public_key=INFO_PUBLIC_KEY,
                           key_uid="00000000-0000-4000-8000-000000000001",
                           key_created_at=T0, created_at=T0, updated_at=T0))
        consumers = [
            Consumer(uid="00000000-0000-4000-8000-000000000011",
                     key="jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f81", name="JIRA",
                     description="Atlassian JIRA at https://jira.example.com",
                     public_key=JIRA_PUBLIC_KEY, signature_method=RSA_SHA1,
                     callback_url="https://jira.example.com/plugins/servlet/oauth/callback",
                     created_at=T0, updated_at=T0),
            Consumer(uid="00000000-0000-4000-8000-000000000012",
                     key="confluence:13549426", name="Confluence",
                     description="Wiki", public_key=JIRA_PUBLIC_KEY, signature_method=RSA_SHA1,
                     two_lo_allowed=True, two_lo_execute_as="svc-reports",
                     created_at=T0 + timedelta(days=3), updated_at=T0 + timedelta(days=3)),
            Consumer(uid="00000000-0000-4000-8000-000000000013",
                     key="partner-portal", name="Partner portal",
                     description="HMAC-SHA1 partner integration", has_shared_secret=True,
                     signature_method=HMAC_SHA1, created_at=T0 + timedelta(days=10),
                     updated_at=T0 + timedelta(days=10)),
        ]
        s.add_all(consumers)
        s.flush()
        jira, confluence = consumers[0].id or 0, consumers[1].id or 0
        users = ["alice", "bob", "carol", "dave"]
        for i in range(7):
            s.add(Token(token=f"{i + 1:02d}tok5e2b9c4d7a1f3e6b8c0d2a4f6e8b", consumer_id=jira,
                        type=TokenType.ACCESS if i % 3 else TokenType.REQUEST,
                        state=TokenState.ACTIVE if i % 3 else TokenState.AUTHORIZED,
                        user=users[i % 4],
                        issued_at=T0 + timedelta(hours=i), last_used_at=None))
        s.add(Token(token="08tokconfluence0000000000000000", consumer_id=confluence,
                    type=TokenType.ACCESS, state=TokenState.ACTIVE, user="svc-reports",
                    issued_at=T0 + timedelta(days=4)))
        providers = [
            ServiceProvider(uid="00000000-0000-4000-8000-000000000021", name="Example Inc",
                            description="Reports API", consumer_key="ck-8843-example",
                            has_shared_secret=True, signature_method=HMAC_SHA1,
                            request_token_url="https://api.example.com/oauth/request_token",
                            authorization_url="https://api.example.com/oauth/authorize",
                            access_token_url="https://api.example.com/oauth/access_token",
                            created_at=T0, updated_at=T0),
            ServiceProvider(uid="00000000-0000-4000-8000-000000000022", name="Legacy CRM",
                            description="Internal, http only", consumer_key="tui-oauth",
                            has_shared_secret=True, signature_method=HMAC_SHA1,
                            request_token_url="http://crm.internal/oauth/request_token",
                            authorization_url="http://crm.internal/oauth/authorize",
                            access_token_url="http://crm.internal/oauth/access_token",
                            created_at=T0, updated_at=T0),
        ]
        s.add_all(providers)
        s.flush()
        s.add(HeldToken(provider_id=providers[0].id or 0, type=TokenType.ACCESS, user="ci",
                        token="held-1", issued_at=T0))
        actions = [("consumer.add", "consumer", c.key) for c in consumers] + [
            ("provider.add", "service_provider", "Example Inc"),
            ("provider.add", "service_provider", "Legacy CRM"),
            ("consumer.edit", "consumer", "confluence:13549426"),
            ("provider.reveal_secret", "service_provider", "Example Inc"),
        ]
        for i in range(audit_entries):
            action, kind, target = actions[i % len(actions)]
            s.add(AuditEntry(at=T0 + timedelta(minutes=7 * i), actor="admin",
                             client_addr="192.0.2.10" if i % 2 else None, action=action,
                             target_type=kind, target=target,
                             after=json.dumps({"name": target}) if action.endswith("add")
                             else None,
                             detail="shared secret revealed on purpose"
                             if action == "provider.reveal_secret" else None))
        s.commit()
    if secrets:
        store.secrets.set(consumer_secret_item(consumers[2]), "demo-partner-secret")
        for p in providers:
            store.secrets.set(provider_secret_item(p), f"demo-secret-{p.consumer_key}")


def add_demo_refusals(store: Store) -> None:
    """A few refused requests and a clock sample (the screenshots of the refusals): JIRA
    signed the internal URL behind a proxy, its clock runs 7 min 12 s behind; an unknown
    key; partner-portal reused a nonce."""
    jira, public = "jira:6f1c2a4e-1b7d-4e8a-9c3f-0d2b5e6a7f81", "https://jira.example.com"
    internal = "http://127.0.0.1:8080"
    myself, inside = f"{public}/rest/api/2/myself", f"{internal}/rest/api/2/myself"
    rows = [
        *(Refusal(at=T0 + timedelta(minutes=i), bucket=jira, consumer_key=jira,
                  token_prefix="05tok5e2", problem="signature_invalid",
                  answered="signature_invalid", method="GET", url=myself, seen_url=inside,
                  listen_url=inside,
                  client_addr="10.0.0.7", signature_method="RSA-SHA1",
                  timestamp=int(T0.timestamp()) + 60 * i, offset=-2, signature="c2lnbmF0dXJl==",
                  finding=f"internal_url: The consumer signed {inside}; this server checks "
                          f"against {myself}.")
          for i in range(3)),
        *(Refusal(at=T0 + timedelta(minutes=10 + i), bucket=jira, consumer_key=jira,
                  problem="timestamp_refused", answered="timestamp_refused", method="POST",
                  url=f"{public}/plugins/servlet/oauth/request-token", client_addr="10.0.0.7",
                  signature_method="RSA-SHA1", timestamp=int(T0.timestamp()) - 432,
                  offset=-432)
          for i in range(2)),
        Refusal(at=T0 + timedelta(minutes=15), bucket="partner-portal",
                consumer_key="partner-portal", problem="nonce_used", answered="nonce_used",
                method="GET", url=f"{public}/rest/api/2/search", client_addr="198.51.100.4",
                signature_method="HMAC-SHA1", timestamp=int(T0.timestamp()) + 900, offset=0),
        Refusal(at=T0 + timedelta(minutes=20), bucket="", consumer_key="jira-old",
                problem="consumer_key_unknown", answered="consumer_key_unknown", method="GET",
                url=myself, client_addr="203.0.113.9",
                signature_method="RSA-SHA1"),
    ]
    with Session(store.engine) as s:
        s.add_all(rows)
        s.add(ConsumerClock(consumer_key=jira, median_offset=-432, samples=40,
                            updated_at=T0 + timedelta(minutes=30)))
        s.commit()
