"""Processes that end while they are sampled. Usage: churn.py FLAG PIDFILE.

A pool of two workers that each run a single task (`pool_task`, 0.25 s busy) and exit, replaced
by new ones, for as long as the script runs; and one Python child that spins in
`short_lived_child` until the file FLAG exists, then returns and exits normally (finalising its
interpreter). The child's pid is written to PIDFILE. Two `ready` lines come, in either order:
the child's once it spins at its marked line, the parent's once it waits for the child.
Everything stops soon after the parent is killed."""
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


def short_lived_child(flag):
    ready.announce_when_at("spin")
    while not os.path.exists(flag): pass  # line: spin


def quiet():
    """Pool initializer: a worker whose parent was killed fails to send its result; that is
    expected here and not worth a traceback."""
    sys.stderr = open(os.devnull, "w")


if __name__ == "__main__":
    if sys.argv[1] == "child":
        short_lived_child(sys.argv[2])
        sys.exit(0)
    flag, pid_file = sys.argv[1:3]
    # The resource tracker (3.8+) warns about the pool's semaphores once the parent is killed.
    os.environ["PYTHONWARNINGS"] = "ignore"
    pool = multiprocessing.Pool(2, initializer=quiet, maxtasksperchild=1)
    tasks = pool.map_async(pool_task, [0.25] * 100000, chunksize=1)
    child = subprocess.Popen([sys.executable, __file__, "child", flag])
    with open(pid_file, "w") as out:
        out.write(str(child.pid))
    ready.announce_when_at("wait")
    child.wait()  # line: wait
    while True:
        time.sleep(1)
