# -*- coding: utf-8 -*-
"""Known busy functions for the `top` tests: `outer` calls `hot`, which takes about two thirds
of the time, and `warm`, which takes one third; `outer` itself does almost nothing.

Runs for the seconds given as the first argument (default: an hour). Tests find the lines they
look for through the `# line:` markers. Python 2.7 and 3.x.
"""
import sys
import time


def hot(n):  # line: hot_def
    total = 0
    for i in range(n):
        total += i * i  # line: hot_body
    return total


def warm(n):  # line: warm_def
    total = 0
    for i in range(n):
        total += i * i
    return total


def outer(deadline):
    while time.time() < deadline:
        hot(20000)
        warm(10000)


outer(time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0))  # line: module
