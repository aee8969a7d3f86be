# -*- coding: utf-8 -*-
"""A known call chain for live tests: <module> -> main -> Outer.Inner.method -> leaf.

Prints one line `ready` once the innermost function spins, then spins until killed (or for
the number of seconds given as the first argument). The line numbers the tests expect are
the `# line:` markers below; tests find them by reading this file, not by hard-coding.
"""
import sys
import time


def leaf(deadline):
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    x = 0
    while time.time() < deadline:  # line: leaf
        x += 1
    return x


class Outer:
    class Inner:
        def method(self, deadline):
            return leaf(deadline)  # line: method


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    return Outer.Inner().method(time.time() + seconds)  # line: main


main()  # line: module
