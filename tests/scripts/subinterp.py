"""Half a second in the main interpreter, then a second inside a sub-interpreter created only
then, then a moment back in the main one once the sub-interpreter is destroyed. A profiler
attached from the start must notice the new interpreter (and shows `inside_sub`, which only
the sub-interpreter runs) and keep going once it is gone. Prints `subinterpreters: yes`, or
`subinterpreters: none` where the version has no module to make one (before 3.8)."""
import sys
import time

SUB = """
import time


def inside_sub(deadline):
    while time.time() < deadline:
        pass


inside_sub(time.time() + 1.0)
"""


def before_sub(deadline):
    while time.time() < deadline:
        pass


def after_sub(deadline):
    while time.time() < deadline:
        pass


def main():
    module = None
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            module = __import__(name)
            break
        except ImportError:
            pass
    before_sub(time.time() + 0.5)
    if module is None:
        print("subinterpreters: none")
        return
    interp = module.create()
    run = getattr(module, "run_string", None) or getattr(module, "exec")
    run(interp, SUB)
    module.destroy(interp)
    after_sub(time.time() + 0.5)
    print("subinterpreters: yes")
    sys.stdout.flush()


main()
