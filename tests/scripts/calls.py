# -*- coding: utf-8 -*-
"""Call-heavy code for checking that sampled stacks are consistent. Usage: calls.py SECS

Hundreds of thousands of short calls a second, from several call sites, so a stack read while
the program runs keeps changing under the reader. Every call site is marked `# call: NAME`
(NAME the function called there), and every function's body runs up to the next blank line,
so a test can tell a stack that existed (each frame but the innermost at a call site of the
next frame's function) from one that mixes two moments. Prints `ready` once the loop runs.
Python 2.7 and 3.x."""
import sys
import time

import ready

try:
    _range = xrange  # noqa: F821  (Python 2)
except NameError:
    _range = range


def leaf(n):
    acc = 0
    for i in _range(n):
        acc += i
    return acc


def left(n):
    return leaf(n)  # call: leaf


def right(n):
    x = leaf(n + 2)  # call: leaf
    return x + 1


def twice(n):
    a = left(n)  # call: left
    b = right(n)  # call: right
    return a + b


def rounds(count):
    total = 0
    for i in _range(count):
        total += left(3)  # call: left
        total += right(1)  # call: right
        total += twice(2)  # call: twice
        total += leaf(4)  # call: leaf
    return total


def main(secs):
    end = time.time() + secs
    calls = 0
    ready.announce_when_at("loop")
    while time.time() < end:
        rounds(200)  # call: rounds  # line: loop
        calls += 200 * 9
    print("RESULT calls=%d" % calls)


if __name__ == "__main__":
    main(float(sys.argv[1]))  # call: main
