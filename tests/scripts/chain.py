# -*- coding: utf-8 -*-
"""A known call chain for live tests: <module> -> main -> Outer.Inner.method -> leaf.

Prints `ready` once the innermost function spins, then spins on one line until killed (or
for the number of seconds given as the first argument). Tests find the expected line numbers
through the `# line:` markers, never by hard-coding them.
"""
import sys
import time

import ready


def leaf(deadline):
    ready.announce_when_at("leaf")
    while time.time() < deadline: pass  # line: leaf
    return 0


class Outer:
    class Inner:
        def method(self, deadline):
            return leaf(deadline)  # line: method


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    return Outer.Inner().method(time.time() + seconds)  # line: main


main()  # line: module
