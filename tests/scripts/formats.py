"""A workload with a known split of CPU time, for the output-format tests. The main thread
repeats `cycle`: `heavy` spins for 30 ms, `light` for 10 ms, and `recurse` calls itself down
four levels and spins 10 ms in the innermost call, so on-CPU samples split 3:1:1 between
them. A second thread, `napper`, sleeps in `nap` (idle: left out unless --idle). Prints
`ready` once `napper` is in `nap`, just before the main thread starts its loop. Runs on
Python 2.7 and 3.

`formats.py HEAVY_MS LIGHT_MS` changes the two spins (for before/after comparisons)."""
import sys
import threading
import time

HEAVY, LIGHT = (0.030, 0.010) if len(sys.argv) < 3 else (
    float(sys.argv[1]) / 1000, float(sys.argv[2]) / 1000)

clock = getattr(time, "perf_counter", time.time)


def spin(seconds):
    end = clock() + seconds
    while clock() < end:  # line: spin
        pass


def heavy():
    spin(HEAVY)  # line: heavy


def light():
    spin(LIGHT)  # line: light


def recurse(depth):
    if depth == 0:
        spin(0.010)  # line: recurse_leaf
    else:
        recurse(depth - 1)  # line: recurse_call


def cycle():
    heavy()  # line: cycle_heavy
    light()  # line: cycle_light
    recurse(3)  # line: cycle_recurse


def nap():
    while True:
        time.sleep(0.5)  # line: nap


napper = threading.Thread(target=nap, name="napper")
napper.daemon = True
napper.start()
# `start` returns once the thread runs, not once it is in `nap`: on 2.7 it can wait a while
# for the GIL on its way there. Every sample must find it in `nap`.
while getattr(sys._current_frames().get(napper.ident), "f_code", None) is not nap.__code__:
    time.sleep(0.001)
print("ready")
sys.stdout.flush()
while True:
    cycle()  # line: main
