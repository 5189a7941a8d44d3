"""Running the demo's pipeline commands: each a real subprocess, logged, timed, training with a bar.

Threads: PyTorch starts one thread per core; on a shared 2-core machine two busy processes'
threads then wait on each other and a step can get 10-20x slower. The demo sets
OMP_NUM_THREADS for its commands itself (unless the user exported one): the cores other work
leaves free now, at least 1 (`busy_cores`, `demo_threads`). Measured (docs/demo.md, "Threads"): on an idle
2-core machine 2 threads trained 250 steps in 38 s against 49 s at 1 thread (0.78x); beside one
other busy process 1 thread is the fast choice, and 2 threads at load ~9 stalled.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from fracdata.errors import FracdataError



def demo_threads(busy: float, cores: int) -> int:
    """The cores that other work leaves free, rounded, at least 1 and at most all:
    2 cores with 0.3 busy -> 2; with 1.0 busy (one other busy process) -> 1."""
    return max(1, min(cores, int(cores - busy + 0.5)))


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one, as on Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def busy_cores(seconds: float = 0.5) -> float:
    """How many cores are busy now: /proc/stat sampled `seconds` apart (the load average lags by a
    minute, so a venv build that just ended would still count); elsewhere the 1-minute load."""
    def sample():
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait
    try:
        (t0, i0), _, (t1, i1) = sample(), time.sleep(seconds), sample()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    return usable_cores() * (1 - (i1 - i0) / max(1, t1 - t0))


# The trainer's own tqdm line: "  45%|████▌     | 540/1200 [01:02<01:15,  8.70it/s]". Data
# preparation bars carry a label before the percentage ("Running tokenizer on dataset: ...").
_TRAIN_BAR = re.compile(r"^\s*\d+%\|[^|]*\|\s*(\d+)/(\d+) \[")


def threads_env() -> tuple[dict[str, str], str]:
    """(environment for the commands, one line saying what was chosen)."""
    env = dict(os.environ)
    if env.get("OMP_NUM_THREADS"):
        return env, f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} (yours)"
    cores, busy = usable_cores(), busy_cores()
    n = demo_threads(busy, cores)
    env["OMP_NUM_THREADS"] = str(n)
    return env, (f"OMP_NUM_THREADS={n} (set by the demo: the cores free with {busy:.1f} of {cores} busy, see "
                 "docs/demo.md; export OMP_NUM_THREADS=N to choose)")


def train_progress(segment: str, total: int) -> int | None:
    """Steps done, when `segment` (one \\r- or \\n-separated piece of output) is the trainer's bar."""
    m = _TRAIN_BAR.match(segment)
    if m and int(m.group(2)) == total:
        return int(m.group(1))
    return None


def run_step(name: str, argv: list[str], log: Path, env: dict, steps: int | None = None) -> float:
    """Run one pipeline command with its output appended to the log; a failure names the log.

    With `steps`, the trainer's progress is read from its output and shown as a bar on stderr.
    """
    t0 = time.perf_counter()
    print(f"[demo] {name}: {' '.join(argv)}", flush=True)
    bar = None
    if steps:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=f"[demo] {name}", unit="step", file=sys.stderr, mininterval=1.0,
                   dynamic_ncols=True)
    with open(log, "ab") as f:
        f.write(f"\n$ {' '.join(argv)}\n".encode())
        f.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        rest = b""
        while chunk := proc.stdout.read1(65536):
            f.write(chunk)
            if bar is None:
                continue
            *pieces, rest = re.split(rb"[\r\n]", rest + chunk)
            for piece in pieces:
                done = train_progress(piece.decode("utf-8", "replace"), steps)
                if done is not None and done > bar.n:
                    bar.update(done - bar.n)
        rc = proc.wait()
    if bar is not None:
        bar.close()
    dt = time.perf_counter() - t0
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise FracdataError(f"demo step {name!r} failed (exit {rc}) after {dt:.0f} s; "
                            f"last line: {tail[-1] if tail else ''!r}; full log: {log}")
    print(f"[demo] {name}: done in {dt:.1f} s" + (f" ({steps:,} steps)" if steps else ""), flush=True)
    return dt
