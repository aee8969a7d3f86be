"""Two threads contending for the GIL, one of which never lets go of it: `hog` holds it inside
one C call that runs for hours (summing `itertools.repeat` checks for nothing between items),
while `contender` waits for it at its marked line.

Nothing in the process can speak once the hog holds the GIL, so `ready` is printed before the
hog starts, and a test waits until a dump shows `hog` at its marked line: from then on the
GIL's holder never changes. The main thread is left waiting in `start()` for the GIL it needs
to return. Python 2.7 and 3.x."""
import itertools
import sys
import threading


def hog():
    sum(itertools.repeat(1, 10 ** 15))  # line: hog


def contender():
    while True: pass  # line: contender


threads = [threading.Thread(target=f, name=f.__name__) for f in (contender, hog)]
for t in threads:
    t.daemon = True
threads[0].start()
print("ready")
sys.stdout.flush()
threads[1].start()
threads[1].join()
