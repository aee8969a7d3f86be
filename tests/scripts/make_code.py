"""Makes code objects when told to. Prints `ready`, then for each line `N` read from stdin
compiles N small functions (each compile makes two code objects: the module's and the
function's), lets them all be freed and prints `made N`. Between requests it only sleeps, which makes no code."""
import gc
import sys

print("ready")
sys.stdout.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    n = int(line)
    for i in range(n):
        exec(compile("def f%d(): return %d\n" % (i, i), "<made>", "exec"), {})
    # Each function and the namespace it was made in hold each other: collected, every code
    # object made here is freed too (3.14+ count those).
    gc.collect()
    print("made %d" % n)
    sys.stdout.flush()
