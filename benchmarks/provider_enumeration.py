"""How long the provider takes to refuse an unknown consumer key, against a known key
with a bad signature (the timing side of consumer-key enumeration), in one run.

    .venv/bin/python benchmarks/provider_enumeration.py [--rounds 2000]

The engine (no HTTP: the network's noise would hide the difference) runs over a
temporary SQLite store with an in-memory keyring, one HMAC-SHA1 and one RSA-SHA1
consumer with 2-legged OAuth on.  Each round times one request from someone who
cannot sign for a known key and one for an unknown key, in alternating order,
with ``problem_detail`` full and minimal.  Prints the median of each and the
ratio unknown / known (1.00: no difference; the test in
tests/service/test_provider_engine.py only checks it stays within 0.85 .. 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()

    from benchmarks.provider_throughput import _memory_keyring
    from tests.provider_support import add_hmac_consumer, add_rsa_consumer
    from tests.service.test_provider_engine import _signed, _time_one
    from tui_oauth.core.provider.engine import ProviderEngine
    from tui_oauth.core.provider.settings import ProviderSettings
    from tui_oauth.core.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db", secrets_backend=_memory_keyring())
        add_hmac_consumer(store, "hmac:known", "a-secret", two_lo_allowed=True)
        add_rsa_consumer(store, "rsa:known", two_lo_allowed=True)
        print(f"{'method':10} {'detail':8} {'known ms':>9} {'unknown ms':>10} {'ratio':>6}  "
              "answers (known / unknown)")
        for detail in ("full", "minimal"):
            engine = ProviderEngine(store, "https://sp.example.com",
                                    settings=ProviderSettings(problem_detail=detail))
            for method, known in (("HMAC-SHA1", "hmac:known"), ("RSA-SHA1", "rsa:known")):
                times: dict[str, list[float]] = {"known": [], "unknown": []}
                answers: dict[str, str] = {}
                warm = 50
                for i in range(args.rounds + warm):
                    pair = [("known", _signed(known, method)),
                            ("unknown", _signed(f"unknown:{i}", method))]
                    for label, (uri, headers) in (pair if i % 2 else pair[::-1]):
                        elapsed, problem = _time_one(engine, uri, headers)
                        answers[label] = problem
                        if i >= warm:
                            times[label].append(elapsed)
                k, u = statistics.median(times["known"]), statistics.median(times["unknown"])
                print(f"{method:10} {detail:8} {k * 1e3:9.3f} {u * 1e3:10.3f} {u / k:6.3f}  "
                      f"{answers['known']} / {answers['unknown']}")
        store.close()


if __name__ == "__main__":
    main()
