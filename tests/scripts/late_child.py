"""Started (through `exec`) after `sampler record -s` began: spins in `parent_work`, then starts
a process that is not Python (`sleep`) and a Python child of its own script that spins in
`late_child_work` for the given seconds (default 1.5) and exits normally, waits for the
child, stops `sleep` and exits with status 0. Prints `parent PID` and `child PID`."""
import os
import subprocess
import sys
import time


def spin(seconds):
    end = time.time() + seconds
    while time.time() < end: pass


def parent_work(seconds):
    spin(seconds)  # line: parent_work


def late_child_work(seconds):
    spin(seconds)  # line: late_child_work


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
    if sys.argv[1:2] == ["child"]:
        say("child %d" % os.getpid())
        late_child_work(seconds)
        sys.exit(0)
    say("parent %d" % os.getpid())
    parent_work(1.0)
    sleeper = subprocess.Popen(["sleep", "60"])
    child = subprocess.Popen([sys.executable, __file__, "child", str(seconds)])
    child.wait()
    sleeper.kill()
    sleeper.wait()
