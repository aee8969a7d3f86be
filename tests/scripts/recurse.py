"""Recurse N frames deep (default 500) through one function, print `ready`, then spin.

The stack a profiler must see: <module> -> N x recurse, innermost spinning.
"""
import sys
import time

import ready


def recurse(n):
    if n <= 1:
        ready.announce_when_at("bottom")
        while True: time.sleep(0)  # line: bottom
    return recurse(n - 1)  # line: recurse


depth = int(sys.argv[1]) if len(sys.argv) > 1 else 500
sys.setrecursionlimit(depth + 100)
recurse(depth)  # line: module
