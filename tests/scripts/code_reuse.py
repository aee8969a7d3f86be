"""Frees a code object while it is being profiled and builds another of the same size, which
CPython's allocator usually places at the same address. A profiler that caches code objects
by address must not keep reporting the first function. Prints `reused: True/False`."""
import gc
import sys
import time


def make(name):
    body = "".join("    v%d = %d\n" % (i, i) for i in range(10))
    source = "def %s(deadline):\n%s    while time.time() < deadline: pass\n" % (name, body)
    namespace = {"time": time}
    exec(source, namespace)
    return namespace[name]


first = make("first_function")
first_code = id(first.__code__)
first(time.time() + 1.0)
del first
gc.collect()
second = make("second_function")
print("reused: %s" % (id(second.__code__) == first_code))
sys.stdout.flush()
second(time.time() + 1.0)
