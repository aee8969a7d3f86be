# -*- coding: utf-8 -*-
"""Non-ASCII function, class and file names (Latin-1, BMP and astral characters)."""
import sys
import time


class Ωmega:
    def méthode_λ(self):
        return 関数_深い()  # line: method


def 関数_深い():
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True: time.sleep(0)  # line: inner


def émoji_𠀋():
    return Ωmega().méthode_λ()  # line: outer


émoji_𠀋()  # line: module
