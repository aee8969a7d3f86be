#!/usr/bin/env python3
"""Target slowdown with 200 mostly idle threads: `benches/workloads/idle_threads.py` (200 threads
blocked on an Event, the main thread doing a fixed amount of CPU work) timed unprofiled and
while each profiler records it at 100 Hz, the conditions alternating round by round. Prints
the median elapsed time of each condition and its ratio to the unprofiled median, as a
Markdown table.

Usage: benches/many_threads.py [--reps N] [--iters N] [--python PATH] [--py-spy PATH]
(after `cargo build --release`). py-spy is measured when given or found in the benchmark
tools' virtualenv (`~/.cache/sampler-bench-tools/venv/bin/py-spy`)."""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The build target is named in .cargo/config.toml (a static build).
SAMPLER = os.path.join(REPO, "target", "x86_64-unknown-linux-gnu", "release", "sampler")
SCRIPT = os.path.join(REPO, "benches", "workloads", "idle_threads.py")
PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
PY_SPY = os.path.expanduser("~/.cache/sampler-bench-tools/venv/bin/py-spy")


def run(python, iters, profiler, workdir):
    """One timed run under `profiler` (`(binary, flags)` or None): the elapsed seconds the
    target reports, and the profiler's exit code."""
    target = subprocess.Popen([python, SCRIPT, str(iters), "200"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert target.stdout.readline().strip() == "READY"
        prof = None
        if profiler is not None:
            binary, flags = profiler
            cmd = [binary, "record", "--pid", str(target.pid), "-r", "100", "-d", "600",
                   "-f", "raw", "-o", os.path.join(workdir, "out.txt")] + flags
            prof = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # attached and sampling before the timed work starts
        target.stdin.write("go\n")
        target.stdin.flush()
        result = target.stdout.readline().strip()
        target.wait(timeout=120)
        rc = None
        if prof is not None:
            prof.wait(timeout=30)
            rc = prof.returncode
        if not result.startswith("RESULT elapsed="):
            sys.exit(f"unexpected output from the target: {result!r}")
        return float(result.split("=", 1)[1]), rc
    finally:
        if target.poll() is None:
            target.kill()
            target.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--iters", type=int, default=6000)
    parser.add_argument("--python", default=f"{PYENV}/versions/3.12.1/bin/python3.12")
    parser.add_argument("--py-spy", default=PY_SPY if os.path.exists(PY_SPY) else None)
    args = parser.parse_args()
    conditions = [("unprofiled", None),
                  ("sampler, default (--pause on-race)", (SAMPLER, [])),
                  ("sampler, --pause always", (SAMPLER, ["--pause", "always"])),
                  ("sampler, --nonblocking", (SAMPLER, ["--nonblocking"]))]
    if args.py_spy:
        conditions += [("py-spy, pausing", (args.py_spy, [])),
                       ("py-spy, --nonblocking", (args.py_spy, ["--nonblocking"]))]
    times = {name: [] for name, _ in conditions}
    with tempfile.TemporaryDirectory() as workdir:
        for rep in range(args.reps):
            # Rotate the order so that no condition always runs first.
            shift = rep % len(conditions)
            for name, profiler in conditions[shift:] + conditions[:shift]:
                elapsed, rc = run(args.python, args.iters, profiler, workdir)
                # py-spy exits non-zero when its target exits under it.
                if rc not in (None, 0) and profiler[0] == SAMPLER:
                    sys.exit(f"{name}: the profiler exited with {rc}")
                times[name].append(elapsed)
                print(f"rep {rep} {name}: {elapsed:.3f} s", file=sys.stderr)
    base = statistics.median(times["unprofiled"])
    print(f"200 idle threads + 1 busy, {args.python}, 100 Hz, median of {args.reps}\n")
    print("| condition | elapsed (median) | slowdown |")
    print("|---|---|---|")
    for name, _ in conditions:
        median = statistics.median(times[name])
        print(f"| {name} | {median:.3f} s | {median / base:.3f} |")


if __name__ == "__main__":
    main()
