# -*- coding: utf-8 -*-
"""Python 2 allows no non-ASCII identifiers, so this variant keeps ASCII names in a non-ASCII
file name; the strings in the frames are byte strings in the file's encoding."""
import sys
import time

import ready


class Omega:
    def method(self):
        return inner_most()  # line: method


def inner_most():
    ready.announce_when_at("inner")
    while True: time.sleep(0)  # line: inner


def cafe():
    return Omega().method()  # line: latin1


def outer():
    return cafe()  # line: outer


outer()  # line: module
