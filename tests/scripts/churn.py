"""Processes that keep ending: a pool of two workers that each run a single task (`pool_task`,
0.25 s busy) and exit, replaced by new ones, and, one after another, Python children that spin
in `short_lived_child` for 0.3 s and exit normally (finalising their interpreter). Prints
`ready` once the main thread waits for its first child. Everything stops soon after the
parent is killed."""
import multiprocessing
import os
import subprocess
import sys
import time

import ready


def spin(seconds):
    end = time.time() + seconds
    while time.time() < end: pass


def pool_task(seconds):
    spin(seconds)


def short_lived_child(seconds):
    spin(seconds)


def quiet():
    """Pool initializer: a worker whose parent was killed fails to send its result; that is
    expected here and not worth a traceback."""
    sys.stderr = open(os.devnull, "w")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        short_lived_child(0.3)
        sys.exit(0)
    # The resource tracker (3.8+) warns about the pool's semaphores once the parent is killed.
    os.environ["PYTHONWARNINGS"] = "ignore"
    pool = multiprocessing.Pool(2, initializer=quiet, maxtasksperchild=1)
    tasks = pool.map_async(pool_task, [0.25] * 100000, chunksize=1)
    ready.announce_when_at("spawn")
    while True:
        subprocess.call([sys.executable, __file__, "child"])  # line: spawn
