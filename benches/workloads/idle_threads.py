"""A target for the many-threads slowdown bench: THREADS threads (default 200) wait on an
Event for the whole run while the main thread does ROUNDS rounds of pure-Python arithmetic.

Usage: idle_threads.py ROUNDS [THREADS]. Prints `READY` once every thread waits, reads one
line from stdin, then times the rounds and prints `RESULT elapsed=SECONDS`.
Runs on Python 2.7 and 3.x."""
from __future__ import print_function

import sys
import threading
import time

clock = getattr(time, "perf_counter", time.time)
release = threading.Event()


def wait_for_the_end():
    release.wait()


def one_round():
    total = 0
    for i in range(10000):
        total = (total + i * 7) % 999983
    return total


def main():
    rounds = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    waiters = []
    for i in range(count):
        waiter = threading.Thread(target=wait_for_the_end, name="waiter-%d" % i)
        waiter.daemon = True
        waiter.start()
        waiters.append(waiter)
    print("READY")
    sys.stdout.flush()
    sys.stdin.readline()
    start = clock()
    for _ in range(rounds):
        one_round()
    print("RESULT elapsed=%.4f" % (clock() - start))
    sys.stdout.flush()
    release.set()


if __name__ == "__main__":
    main()
