# -*- coding: utf-8 -*-
"""Non-ASCII function, class and file names: Latin-1 only (1 byte a character), BMP (2 bytes)
and astral (4 bytes) characters."""
import sys
import time

import ready


class Ωmega:
    def méthode_λ(self):
        return 関数_深い()  # line: method


def 関数_深い():
    ready.announce_when_at("inner")
    while True: time.sleep(0)  # line: inner


def café():
    # Latin-1 only: a 1-byte-per-character string that is not ASCII.
    return Ωmega().méthode_λ()  # line: latin1


def émoji_𠀋():
    return café()  # line: outer


émoji_𠀋()  # line: module
