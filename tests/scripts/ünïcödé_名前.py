# -*- coding: utf-8 -*-
"""Non-ASCII function, class and file names (Latin-1, BMP and astral characters)."""
import sys
import time

import ready


class Ωmega:
    def méthode_λ(self):
        return 関数_深い()  # line: method


def 関数_深い():
    ready.announce_when_at("inner")
    while True: time.sleep(0)  # line: inner


def émoji_𠀋():
    return Ωmega().méthode_λ()  # line: outer


émoji_𠀋()  # line: module
