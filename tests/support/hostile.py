"""The hostile-input harness: run a command as a user does and check the project's promise.

The promise (README): bad input gets a one-line `error: ...` naming the file and the reason
(exit 2), or a counted reject with its reason (exit 0, or 1 when some items failed and were
counted); never a traceback, whatever the input. `run` starts the real CLI in a subprocess
(so nothing in the test process can catch what a user would see); `check` asserts the promise
and returns the run for the case's own assertions (counts, files written, what was paid).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXIT_CODES = {0: "done", 1: "some items failed (counted)", 2: "one-line error"}


@dataclass
class Run:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def errors(self) -> list[str]:
        """The `error: ...` lines on stderr (a recipe check may report several, one per key)."""
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]


def run(argv: list[str], *, program: str = "fracdata", cwd: str | Path | None = None, env: dict | None = None,
        timeout: float = 300, stdin: bytes | None = None) -> Run:
    """`python -m <program> <argv>` with this checkout first on the path; output decoded leniently
    (hostile input may make a command print bytes that are not UTF-8: that alone is no crash)."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
                    HF_HUB_OFFLINE="1", DISABLE_VERSION_CHECK="1", TOKENIZERS_PARALLELISM="false")
    full_env.update(env or {})
    cmd = [sys.executable, "-m", program, *map(str, argv)]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, input=stdin, capture_output=True, timeout=timeout)
    return Run(cmd, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def check(r: Run, allowed: tuple[int, ...] = (0, 1, 2)) -> Run:
    """Assert the promise: an allowed exit code, no traceback, and on exit 2 only `error:` lines
    on the last lines of stderr (what came before is the command's progress)."""
    out = r.stdout + r.stderr
    where = f"{' '.join(r.argv[2:])}\n--- stdout ---\n{r.stdout[-2000:]}\n--- stderr ---\n{r.stderr[-2000:]}"
    assert r.returncode in allowed, f"exit {r.returncode} (allowed: {allowed}) for {where}"
    assert "Traceback (most recent call last)" not in out, f"a traceback reached the user: {where}"
    if r.returncode == 2:
        assert r.errors, f"exit 2 without an `error:` line: {where}"
        tail = r.stderr.rstrip("\n").splitlines()[-len(r.errors):]
        assert tail == r.errors, f"exit 2 must end with its one-line error(s): {where}"
        assert all(len(e) < 2000 for e in r.errors), f"an error line is not one readable line: {where}"
    return r
