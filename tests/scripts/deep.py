"""A deep recursion for replay fixtures and benches: <module> -> main -> recurse x DEPTH.

Usage: deep.py [DEPTH [SECONDS]] (defaults 50 and 3600). The bottom frame prints `ready`, then
spins on one line until killed or until SECONDS have passed.
"""
import sys
import time

import ready


def recurse(depth, deadline):
    if depth > 1:
        return recurse(depth - 1, deadline)  # line: recurse
    ready.announce_when_at("bottom")
    while time.time() < deadline: pass  # line: bottom
    return 0


def main():
    depth = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
    sys.setrecursionlimit(max(1000, depth + 100))
    return recurse(depth, time.time() + seconds)  # line: main


main()  # line: module
