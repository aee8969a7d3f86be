/* What one ptrace stop and restart costs a busy thread, whatever the profiler does in between.
 *
 * Build and run: cc -O2 -o /tmp/ptrace_stop benches/ptrace_stop.c && /tmp/ptrace_stop [RATE] [SECS]
 *
 * A child spins reading the monotonic clock and adds up every gap longer than 3 µs between two
 * reads: the time it did not run. The parent stops and restarts it RATE times a second (1000 by
 * default) for SECS seconds (3), in three ways, and prints the child's lost time per stop for
 * each, with a run without stops first as the baseline:
 *   seize    PTRACE_SEIZE + PTRACE_INTERRUPT + waitpid, then PTRACE_DETACH (what `--pause
 *            always` does for every sample, with no memory read in between);
 *   attached PTRACE_INTERRUPT + waitpid, then PTRACE_CONT, seized once for the whole run;
 *   none     the parent wakes at the same rate and does nothing.
 * The lost time per stop, divided by the sampling interval, is the slowdown that pausing
 * alone costs: 55 µs at 1000 Hz is 5.5%. Run as root (or with ptrace permission).
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void sleep_until(double t) {
    struct timespec ts = {(time_t)t, (long)((t - (time_t)t) * 1e9)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

struct shared {
    volatile int stop;
    volatile int done;
    volatile double lost;
};

enum mode { NONE, SEIZE, ATTACHED };

static double run(enum mode mode, int rate, double secs) {
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t child = fork();
    if (child == 0) {
        double lost = 0, last = now();
        while (!sh->stop) {
            double t = now();
            if (t - last > 3e-6) lost += t - last;
            last = t;
        }
        sh->lost = lost;
        sh->done = 1;
        for (;;) pause();
    }
    usleep(200000);
    if (mode == ATTACHED) ptrace(PTRACE_SEIZE, child, 0, 0);
    int stops = 0, status;
    double start = now(), next = start;
    while (now() - start < secs) {
        next += 1.0 / rate;
        sleep_until(next);
        stops++;
        if (mode == NONE) continue;
        if (mode == SEIZE) ptrace(PTRACE_SEIZE, child, 0, 0);
        ptrace(PTRACE_INTERRUPT, child, 0, 0);
        waitpid(child, &status, __WALL);
        if (mode == SEIZE) ptrace(PTRACE_DETACH, child, 0, 0);
        else ptrace(PTRACE_CONT, child, 0, 0);
    }
    if (mode == ATTACHED) {
        ptrace(PTRACE_INTERRUPT, child, 0, 0);
        waitpid(child, &status, __WALL);
        ptrace(PTRACE_DETACH, child, 0, 0);
    }
    sh->stop = 1;
    while (!sh->done) usleep(1000);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    double per_stop = sh->lost / stops;
    munmap(sh, sizeof *sh);
    return per_stop;
}

int main(int argc, char **argv) {
    int rate = argc > 1 ? atoi(argv[1]) : 1000;
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    const char *names[] = {"none", "seize", "attached"};
    for (int round = 0; round < 2; round++)
        for (int m = NONE; m <= ATTACHED; m++)
            printf("%-8s %6.1f us lost per stop at %d Hz\n", names[m], run(m, rate, secs) * 1e6, rate);
    return 0;
}
