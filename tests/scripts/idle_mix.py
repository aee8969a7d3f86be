# -*- coding: utf-8 -*-
"""Named threads with known behaviour, for idle detection and thread names: two that compute
(`busy-1`, `busy-2`) and five that block forever, each in a different way (sleep, a lock,
select, a pipe read, a condition variable). The main thread blocks in join(). Prints `ready`
once every worker is at its marked line and the main thread has settled (see ready.py).
Python 2.7 and 3.x."""
import os
import select
import sys
import threading
import time

import ready

PY3 = sys.version_info[0] >= 3


def spin():
    while True: pass  # line: spin


def sleeping():
    while True: time.sleep(3600)  # line: sleeping


held = threading.Lock()
held.acquire()


def lock_wait():
    held.acquire()  # line: lock_wait


def select_wait():
    read_end, _ = os.pipe()
    select.select([read_end], [], [], 3600)  # line: select_wait


def read_wait():
    read_end, _ = os.pipe()
    os.read(read_end, 1)  # line: read_wait


condition = threading.Condition()


def cond_wait():
    with condition:
        condition.wait()  # line: cond_wait


WORKERS = [
    ("busy-1", spin, "spin"),
    ("busy-2", spin, "spin"),
    ("sleeping", sleeping, "sleeping"),
    ("lock-wait", lock_wait, "lock_wait"),
    ("select-wait", select_wait, "select_wait"),
    ("read-wait", read_wait, "read_wait"),
    # A non-ASCII thread name where names are text (Python 3).
    (u"cond-wait-名前" if PY3 else "cond-wait", cond_wait, "cond_wait"),
]


lines = {}
with open(__file__, "rb") as source:
    for number, text in enumerate(source, 1):
        if b"# line: " in text:
            lines[text.rstrip().split(b"# line: ")[1].decode("ascii")] = number

threads = []
for name, target, marker in WORKERS:
    t = threading.Thread(target=target, name=name)
    t.daemon = True
    t.start()
    threads.append((t, lines[marker]))
while True:
    frames = sys._current_frames()
    # Some waits are Python code (Condition.wait): the marked line is then an outer frame.
    if all(ready.at_line(frames.get(t.ident), __file__, line) for t, line in threads):
        break
    time.sleep(0.01)
ready.announce_when_at("main")
threads[2][0].join()  # line: main
