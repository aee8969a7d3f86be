# -*- coding: utf-8 -*-
"""Objects made in a loop, each one's `__init__` doing the work. Usage: init_call.py SECS

From 3.13, once the call site is specialised, CPython runs such an `__init__` under a
trampoline frame of its own: a code object named `__init__`, in a file named `__init__`,
with no lines, that tracebacks never show. A profiler must leave it out too. Every frame of
the main thread is this script's; prints `ready` once the loop runs. Python 2.7 and 3.x."""
import sys
import time

import ready


class Maker(object):
    def __init__(self, n):
        self.total = spin(n)  # line: init


def spin(n):
    acc = 0
    for i in range(n):
        acc += i  # line: spin
    return acc


def main(secs):
    end = time.time() + secs
    for _ in range(100):
        Maker(1)
    ready.announce_when_at("loop")
    while time.time() < end:
        Maker(3000)  # line: loop


if __name__ == "__main__":
    main(float(sys.argv[1]))  # line: main
