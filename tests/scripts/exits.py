"""Runs for the given seconds (default 1.5) in `work`, then exits with status 3 by itself."""
import sys
import time


def work(seconds):
    end = time.time() + seconds
    n = 0
    while time.time() < end: n += 1  # line: work
    return n


work(float(sys.argv[1]) if len(sys.argv) > 1 else 1.5)
sys.exit(3)
