"""Several threads with known stacks: two busy workers, one sleeping, and the main thread
blocked in join(). Prints `ready` only once the interpreter itself reports every worker at its
marked line and the main thread settled in join() (see ready.py), so tests never race the
start-up. The announcing thread may still be exiting when a test looks: it is named
`ready-watcher` and its innermost function is `watch`."""
import sys
import threading
import time

import ready


def busy_one():  # line: def_busy_one
    while True: pass  # line: busy_one


def busy_two():
    while True: pass  # line: busy_two


def sleeper():
    while True: time.sleep(5)  # line: sleeper


def at_marker(frame, name):
    return frame.f_code.co_name == name


workers = [threading.Thread(target=f, name=f.__name__)
           for f in (busy_one, busy_two, sleeper)]
for w in workers:
    w.daemon = True
    w.start()
while True:
    frames = sys._current_frames()
    if all(w.ident in frames and at_marker(frames[w.ident], w.name) for w in workers):
        break
    time.sleep(0.01)
ready.announce_when_at("main")
workers[2].join()  # line: main
