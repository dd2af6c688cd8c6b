"""A reader that goes away (`tui-oauth ... | head -1`): the program stops quietly with
the status of a process killed by SIGPIPE (141), as other command-line tools do."""

from __future__ import annotations

import subprocess
import sys

from tests.cli_support import REPO, Cli, base_env


def test_a_closed_pipe_stops_quietly(cli: Cli) -> None:
    assert cli.db_url is not None
    for i in range(3):
        cli("consumers", "add", "--key", f"k{i}", "--name", "N" * 200, "--signature-method",
            "HMAC-SHA1", "--secret-stdin", input=f"secret-{i}-0123456789\n")
    # The reader closes at once; the writer's first write after that fails.
    reader = subprocess.Popen(["true"], stdin=subprocess.PIPE)
    reader.wait()
    assert reader.stdin is not None
    done = subprocess.run([sys.executable, "-m", "tui_oauth", "--db", cli.db_url, "consumers",
                           "list", "-o", "jsonl"], cwd=REPO, env=base_env(),
                          stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=60,
                          check=False)
    reader.stdin.close()
    assert done.returncode == 141, (done.returncode, done.stderr)
    assert done.stderr == ""
