"""A `multiprocessing` pool of three workers, each spinning in `spin_in_worker`, while the
parent waits for their results. Python 2.7 and 3.x, whatever the start method: fork before
3.14; forkserver from 3.14, where the workers are the parent's grandchildren.

Writes `A B C` (the workers' pids, sorted) to the file named by the first argument once every
worker reports, from its own frames, that it spins in its marked loop, then prints `ready`
once the parent is blocked at its marked line.
A worker exits when its parent or the main process goes away (a forkserver outlives the main
process as long as workers hold its pipe), so a killed target leaves nothing spinning.
"""
import multiprocessing
import os
import sys
import threading
import time

import ready

_started = None
_main = None


def remember(queue, main):
    """Pool initializer: keep the queue on which workers announce themselves, and the main
    process's pid."""
    global _started, _main
    _started = queue
    _main = main


def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except OSError:
        return True


def spin_in_worker(_):
    parent = os.getppid()
    me = threading.current_thread().ident
    spin_line = ready._marker_line("spin")

    def announce():
        # This worker is busy once its own thread is seen inside the spin loop.
        while True:
            frame = sys._current_frames().get(me)
            if frame is not None and frame.f_lineno >= spin_line:
                _started.put(os.getpid())
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=announce)
    watcher.daemon = True
    watcher.start()
    n = 0
    while True:  # line: spin
        n += 1
        if n % 200000 == 0 and (os.getppid() != parent or gone(_main)):
            os._exit(0)


if __name__ == "__main__":
    # The resource tracker (3.8+) warns about the pool's semaphores once the parent is killed.
    os.environ["PYTHONWARNINGS"] = "ignore"
    started = multiprocessing.Queue()
    pool = multiprocessing.Pool(3, initializer=remember, initargs=(started, os.getpid()))
    # Tasks never end, so each of the three workers takes exactly one.
    result = pool.map_async(spin_in_worker, range(3), chunksize=1)
    pids = sorted(started.get(timeout=60) for _ in range(3))
    with open(sys.argv[1], "w") as out:
        out.write(" ".join(str(p) for p in pids))
    ready.announce_when_at("wait")
    result.wait()  # line: wait
