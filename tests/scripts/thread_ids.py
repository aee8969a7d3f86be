"""Threads that report their own ids: each worker records (Python thread id, kernel thread id
from the gettid system call), then the main thread prints them all on one line after
`ready`: `ids <ident>:<tid> ...`. Runs on Python 2.7 and 3.x (x86-64 Linux)."""
import ctypes
import sys
import threading
import time

SYS_GETTID = 186  # x86-64
libc = ctypes.CDLL(None, use_errno=True)
ids = []
lock = threading.Lock()


def report():
    with lock:
        ids.append((threading.current_thread().ident, libc.syscall(SYS_GETTID)))


def worker():
    report()
    while True: time.sleep(1)  # line: worker


threads = [threading.Thread(target=worker) for _ in range(3)]
for t in threads:
    t.daemon = True
    t.start()
report()
while True:
    with lock:
        if len(ids) == 4:
            break
    time.sleep(0.01)
sys.stdout.write("ready\n")
sys.stdout.write("ids " + " ".join("%d:%d" % pair for pair in ids) + "\n")
sys.stdout.flush()
while True: time.sleep(1)  # line: main
