# -*- coding: utf-8 -*-
"""A frame with arguments and locals of every common type, stopped in a spin loop at a marked
line, for `dump --locals`. The expected reprs are in tests/suite/live.rs. Python 2.7 and 3.x
(2.7's text is `unicode`, its bytes are `str`, and its big ints are `long`)."""
import sys

import ready

PY3 = sys.version_info[0] >= 3


def inspect_me(number, text, *rest, **options):
    nothing = None
    yes = True
    no = False
    negative = -7
    big = 2 ** 100
    big_negative = -(2 ** 70)
    ratio = 3.25
    greeting = u"héllo wörld 名前" if PY3 else u"h\xe9llo"
    long_text = u"é" * 100
    raw = b"\x00ab'"
    items = [1, 2, 3]
    pair = (1, 2)
    mapping = {"a": 1}
    unique = set([1, 2, 3, 4])
    ready.announce_when_at("spin")
    while True: pass  # line: spin


inspect_me(42, "hi", 1, 2, flag=True)
