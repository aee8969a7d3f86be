"""Many threads for replay fixtures and benches: N worker threads (default 9), every third one
spinning in `spinner`, the others sleeping in `sleeper`, and the main thread sleeping in `main`.

Usage: many_threads.py [N [SECONDS]] (defaults 9 and 3600). Prints `ready` once every worker has
gone round its loop at least once, so each thread sits on its loop's line, then waits until
killed or until SECONDS have passed.
"""
import sys
import threading
import time

import ready


def spinner(rounds, i, deadline):
    while time.time() < deadline: rounds[i] += 1  # line: spinner


def sleeper(rounds, i, deadline):
    while time.time() < deadline: rounds[i] += 1; time.sleep(0.05)  # line: sleeper


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
    deadline = time.time() + seconds
    rounds = [0] * count
    for i in range(count):
        work = spinner if i % 3 == 0 else sleeper
        thread = threading.Thread(target=work, args=(rounds, i, deadline), daemon=True)
        thread.start()
    while not all(rounds): time.sleep(0.01)
    ready.announce_when_at("main")
    while time.time() < deadline: time.sleep(0.05)  # line: main


main()  # line: module
