#!/usr/bin/env python3
"""Per-interpreter attach figures: for each interpreter of the test matrix, the wall time of
`sampler dump` on a running target (median and minimum of 10), whether the dump shows the
known stack, and how many samples of a 2 s `record` at 100 Hz land in the innermost function.

Usage: benches/attach_matrix.py   (after `cargo build --release` and .ci/install-pythons.sh)
Prints one Markdown table row per interpreter."""
import os
import statistics
import subprocess
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The build target is named in .cargo/config.toml (a static build).
SAMPLER = os.path.join(REPO, "target", "x86_64-unknown-linux-gnu", "release", "sampler")
SCRIPT = os.path.join(REPO, "tests", "scripts", "chain.py")
PYENV = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
SID = os.environ.get("SAMPLER_PYTHONS_DIR", os.path.join(REPO, ".cache", "pythons"))
PYTHONS = [
    ("pyenv-2.7", f"{PYENV}/versions/2.7.18/bin/python2.7"),
    ("pyenv-3.6", f"{PYENV}/versions/3.6.15/bin/python3.6"),
    ("pyenv-3.7", f"{PYENV}/versions/3.7.16/bin/python3.7"),
    ("pyenv-3.8", f"{PYENV}/versions/3.8.18/bin/python3.8"),
    ("pyenv-3.9", f"{PYENV}/versions/3.9.18/bin/python3.9"),
    ("pyenv-3.10", f"{PYENV}/versions/3.10.13/bin/python3.10"),
    ("pyenv-3.11", f"{PYENV}/versions/3.11.7/bin/python3.11"),
    ("pyenv-3.12", f"{PYENV}/versions/3.12.1/bin/python3.12"),
    ("pyenv-3.13", f"{PYENV}/versions/3.13.0/bin/python3.13"),
    ("debian-3.11", "/usr/bin/python3.11"),
    ("sid-3.13", f"{SID}/bin/python3.13"),
    ("sid-3.14", f"{SID}/bin/python3.14"),
    ("sid-3.15", f"{SID}/bin/python3.15"),
]


def main():
    print("| interpreter | dump | record: samples in leaf | dump median ms | dump min ms |")
    print("|---|---|---|---|---|")
    for label, python in PYTHONS:
        if not os.path.exists(python):
            print(f"| {label} | missing | | | |")
            continue
        target = subprocess.Popen([python, SCRIPT], stdout=subprocess.PIPE)
        target.stdout.readline()  # ready
        times, ok = [], True
        for _ in range(10):
            start = time.perf_counter()
            run = subprocess.run([SAMPLER, "dump", "--pid", str(target.pid)],
                                 capture_output=True, text=True)
            times.append((time.perf_counter() - start) * 1000)
            ok = ok and run.returncode == 0 and "leaf (chain.py:" in run.stdout
        out = f"/tmp/attach-matrix-{os.getpid()}.txt"
        rec = subprocess.run([SAMPLER, "record", "--pid", str(target.pid), "-d", "2", "-r", "100",
                              "-f", "raw", "-o", out], capture_output=True, text=True)
        lines = open(out).read().splitlines() if rec.returncode == 0 else []
        counts = [(l, int(l.rsplit(" ", 1)[1])) for l in lines if l.strip()]
        leaf = sum(c for l, c in counts if "leaf (chain.py:" in l)
        total = sum(c for _, c in counts)
        target.kill()
        target.wait()
        print(f"| {label} | {'ok' if ok else 'FAIL'} | {leaf}/{total} | "
              f"{statistics.median(times):.1f} | {min(times):.1f} |")


if __name__ == "__main__":
    main()
