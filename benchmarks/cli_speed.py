"""How fast the command line answers, beside `python -c 'import click'` in the same run.

    python benchmarks/cli_speed.py [RUNS]

Needs only the installed package (no tests, no pytest).  Each figure is the median
wall time of RUNS fresh processes (7 by default), run in turn so that a busy
machine slows each of them alike:

- ``import click``: the floor any click program pays;
- ``tui-oauth --version`` and ``--help`` (the ratio to ``import click`` is the target:
  at most 2);
- ``consumers list`` on an empty SQLite store (target: at most 250 ms);
- ``import sqlalchemy`` and ``import tui_oauth.core.models`` (SQLAlchemy, SQLModel
  and the tables): the floor under any command that opens the store;
- completion: one TAB as bash asks for it (``_TUI_OAUTH_COMPLETE=bash_complete``), of a
  subcommand name and of a consumer key (target: under 150 ms).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench_support import compile_package


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed ({done.returncode}): {done.stderr[-500:]!r}")
    return elapsed


def main(runs: int) -> None:
    compile_package()  # measured as installed: with bytecode
    py = sys.executable
    cli = [py, "-m", "tui_oauth"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TUI_OAUTH_DB=f"sqlite:///{tmp}/empty.db",
                   XDG_DATA_HOME=tmp, XDG_STATE_HOME=tmp)
        env.pop("_TUI_OAUTH_COMPLETE", None)
        subprocess.run([*cli, "db", "init"], env=env, check=True, capture_output=True)

        def complete(words: str) -> dict[str, str]:
            return dict(env, _TUI_OAUTH_COMPLETE="bash_complete", COMP_WORDS=words,
                        COMP_CWORD=str(len(words.split()) - 1 + words.endswith(" ")))

        cases: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c 'import click'", [py, "-c", "import click"], env),
            ("tui-oauth --version", [*cli, "--version"], env),
            ("tui-oauth --help", [*cli, "--help"], env),
            ("consumers list (empty store)", [*cli, "consumers", "list"], env),
            # What consumers list cannot do without: the store's libraries.
            ("python -c 'import sqlalchemy'", [py, "-c", "import sqlalchemy"], env),
            ("python -c 'import ...models'", [py, "-c", "import tui_oauth.core.models"], env),
            ("TAB: tui-oauth con", cli, complete("tui-oauth con")),
            ("TAB: consumers show j", cli, complete("tui-oauth consumers show j")),
        ]
        for _, argv, case_env in cases:  # warm the file cache, not counted
            timed(argv, case_env)
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        for _ in range(runs):
            for name, argv, case_env in cases:
                times[name].append(timed(argv, case_env))
    base = statistics.median(times[cases[0][0]])
    print(f"median of {runs} runs each, interleaved ({os.cpu_count()} CPUs)")
    for name, _, _ in cases:
        t = times[name]
        med = statistics.median(t)
        print(f"{name:32s} {med * 1000:6.0f} ms  (min {min(t) * 1000:4.0f}, "
              f"max {max(t) * 1000:4.0f})  {med / base:4.2f}x import click")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
