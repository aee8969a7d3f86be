/* What process_vm_readv costs per call and per page, the floor under a sample's reads.
 *
 * Build and run: cc -O2 -o /tmp/vm_readv_cost benches/vm_readv_cost.c && /tmp/vm_readv_cost
 *
 * A child holds 64 pages of memory and sleeps; the parent reads from it 200000 times in each
 * shape and prints the time per call: 1 to 16 pieces of 64 bytes, each on a page of its own
 * (the shape of a sample's batch: thread state, frames, code objects, scattered), the same
 * with 8 pieces on one page, and one piece spanning 8 pages. The difference between the
 * shapes is the cost of each page the kernel looks up and pins; the single-piece call is
 * the cost of the system call itself.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define CALLS 200000

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static char local[64 * PAGE];

static double per_call(pid_t pid, struct iovec *l, struct iovec *r, int n) {
    double start = now_ns();
    for (int k = 0; k < CALLS; k++) process_vm_readv(pid, l, n, r, n, 0);
    return (now_ns() - start) / CALLS;
}

int main(void) {
    char *mem = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(mem, 1, 64 * PAGE);
    pid_t pid = fork();
    if (pid == 0) for (;;) pause();
    struct iovec l[16], r[16];
    for (int n = 1; n <= 16; n *= 2) {
        for (int i = 0; i < n; i++) {
            l[i] = (struct iovec){local + i * PAGE, 64};
            r[i] = (struct iovec){mem + i * 3 * PAGE + 100, 64};
        }
        printf("%2d pieces of 64 bytes, each on its own page: %6.0f ns per call\n", n,
               per_call(pid, l, r, n));
    }
    for (int i = 0; i < 8; i++) {
        l[i] = (struct iovec){local + i * 64, 64};
        r[i] = (struct iovec){mem + i * 64, 64};
    }
    printf(" 8 pieces of 64 bytes on one page:             %6.0f ns per call\n",
           per_call(pid, l, r, 8));
    l[0] = (struct iovec){local, 8 * PAGE};
    r[0] = (struct iovec){mem, 8 * PAGE};
    printf(" 1 piece of 8 pages:                           %6.0f ns per call\n",
           per_call(pid, l, r, 1));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}
