#!/usr/bin/env python3
"""The highest sampling rate each profiler keeps up on a 53-frame stack: `tests/scripts/deep.py
50` (one thread spinning at the bottom of a 50-deep recursion) recorded for a few seconds at
a rate far above what anyone can reach, the profilers taking turns round by round. Prints,
as a Markdown table, the median of each profiler's samples per second (samples over its
wall time, attach included) and of its CPU time per sample.

compare.sh's section c asks for at most 100 kHz, which austin and sampler both come close to;
this asks for 1 MHz, so each one's own ceiling shows.

Usage: benches/max_rate.py [--reps N] [--secs S] [--rate HZ] [--python PATH] [--austin PATH]
(after `cargo build --release`). austin 4 is measured when given or found in the benchmark
tools (`~/.cache/sampler-bench-tools/austin40/austin`)."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The build target is named in .cargo/config.toml (a static build).
SAMPLER = os.path.join(REPO, "target", "x86_64-unknown-linux-gnu", "release", "sampler")
SCRIPTS = os.path.join(REPO, "tests", "scripts")
PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
AUSTIN = os.path.expanduser("~/.cache/sampler-bench-tools/austin40/austin")
# Terminal colour codes, which austin writes around its figures.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sampler_cmd(flags):
    def cmd(pid, rate, secs, out):
        return [SAMPLER, "record", "--pid", str(pid), "-r", str(rate), "-d", str(secs),
                "-f", "raw", "-o", out] + flags

    def samples(stderr):
        found = re.findall(r": (\d+) samples, ", stderr)
        return int(found[-1]) if found else None
    return cmd, samples


def austin_cmd(binary):
    def cmd(pid, rate, secs, out):
        return [binary, "-p", str(pid), "-i", str(max(1, round(1e6 / rate))), "-x", str(secs),
                "-o", out]

    def samples(stderr):
        # "Error rate : E/N (...)": N thread samples, one per tick for a one-thread target.
        found = re.findall(r"Error rate[\s.:]*(\d+)/(\d+)", stderr)
        return int(found[-1][1]) if found else None
    return cmd, samples


def run(python, profiler, rate, secs, workdir):
    """One recording of a fresh target: (samples per second, CPU µs per sample)."""
    make_cmd, count = profiler
    target = subprocess.Popen([python, os.path.join(SCRIPTS, "deep.py"), "50", str(secs + 10)],
                              stdout=subprocess.PIPE, text=True, cwd=SCRIPTS)
    try:
        if target.stdout.readline().strip() != "ready":
            sys.exit("deep.py did not get ready")
        out = os.path.join(workdir, "out")
        before = os.times()
        start = time.monotonic()
        done = subprocess.run(make_cmd(target.pid, rate, secs, out), capture_output=True,
                              text=True, timeout=secs + 60)
        wall = time.monotonic() - start
        after = os.times()
        cpu = (after.children_user - before.children_user
               + after.children_system - before.children_system)
        samples = count(ANSI.sub("", done.stderr))
        # austin 4 exits 254 after a run it reports in full; the count is what matters.
        if not samples:
            sys.exit(f"{make_cmd(target.pid, rate, secs, out)}: exit {done.returncode}, "
                     f"no sample count in:\n{done.stderr[-2000:]}")
        return samples / wall, cpu / samples * 1e6
    finally:
        target.kill()
        target.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--secs", type=int, default=5)
    parser.add_argument("--rate", type=int, default=1_000_000)
    parser.add_argument("--python", default=f"{PYENV}/versions/3.12.1/bin/python3.12")
    parser.add_argument("--austin", default=AUSTIN if os.path.exists(AUSTIN) else None)
    args = parser.parse_args()
    profilers = [("sampler --nonblocking", sampler_cmd(["--nonblocking"])),
                 ("sampler, default (--pause on-race)", sampler_cmd([]))]
    if args.austin:
        profilers.append(("austin 4", austin_cmd(args.austin)))
    results = {name: [] for name, _ in profilers}
    with tempfile.TemporaryDirectory() as workdir:
        for rep in range(args.reps):
            # Rotate the order so that no profiler always runs first.
            shift = rep % len(profilers)
            for name, profiler in profilers[shift:] + profilers[:shift]:
                rate, cost = run(args.python, profiler, args.rate, args.secs, workdir)
                results[name].append((rate, cost))
                print(f"rep {rep} {name}: {rate:,.0f}/s, {cost:.2f} µs CPU per sample",
                      file=sys.stderr)
    print(f"deep.py 50 (53 frames), {args.python}, {args.rate:,} Hz asked, {args.secs} s, "
          f"median of {args.reps}\n")
    print("| profiler | samples per second | CPU per sample |")
    print("|---|---|---|")
    for name, _ in profilers:
        rate = statistics.median(r for r, _ in results[name])
        cost = statistics.median(c for _, c in results[name])
        print(f"| {name} | {rate:,.0f} | {cost:.2f} µs |")


if __name__ == "__main__":
    main()
