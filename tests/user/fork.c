/*
 * fork: the child gets a copy of the parent's memory (heap, stack, data),
 * copy-on-write: each side's writes stay its own; wait4/waitpid report the
 * child's exit status or the signal that ended it, WNOHANG does not block,
 * ECHILD when there is no child; getppid in the child is the parent.
 */
#include "check.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#define PAGES 64
static int global = 7;
static char bss_buffer[8192];
static volatile uintptr_t nowhere = 0x10;

static void fill(unsigned char *p, unsigned char value) {
    for (int i = 0; i < PAGES; i++)
        p[i * 4096 + i] = (unsigned char)(value + i);
}

static int check(const unsigned char *p, unsigned char value) {
    for (int i = 0; i < PAGES; i++)
        if (p[i * 4096 + i] != (unsigned char)(value + i))
            return 0;
    return 1;
}

int main(void) {
    unsigned char *heap = malloc(PAGES * 4096);
    CHECK(heap != NULL, "malloc");
    fill(heap, 10);
    int on_stack = 5;
    pid_t parent = getpid();

    pid_t child = fork();
    if (child == 0) {
        int ok = check(heap, 10) && global == 7 && on_stack == 5 && getppid() == parent;
        fill(heap, 100); /* copies every page */
        global = 8;
        on_stack = 6;
        ok = ok && check(heap, 100) && global == 8 && on_stack == 6;
        _exit(ok ? 42 : 1);
    }
    CHECK(child > 0, "fork: %s", strerror(errno));
    /* The parent writes half the pages while the child may run. */
    for (int i = 0; i < PAGES; i += 2)
        heap[i * 4096 + i] = (unsigned char)(50 + i);
    int status = 0;
    struct rusage usage = {0};
    CHECK(wait4(child, &status, 0, &usage) == child, "wait4 returns the child");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42, "child saw the parent's memory and kept its own (status %#x)", status);
    CHECK(usage.ru_minflt > 0, "the child's page faults are counted (%ld)", usage.ru_minflt);
    int parent_ok = 1;
    for (int i = 0; i < PAGES; i++)
        parent_ok &= heap[i * 4096 + i] == (unsigned char)((i % 2 == 0 ? 50 : 10) + i);
    CHECK(parent_ok && global == 7 && on_stack == 5, "the parent's memory is its own");
    CHECK_ERR(waitpid(-1, &status, 0), ECHILD);
    CHECK_ERR(waitpid(child, &status, 0), ECHILD);

    /* Three children, reaped in any order. */
    int seen = 0;
    for (int n = 0; n < 3; n++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(n + 1);
        CHECK(pid > 0, "fork %d", n);
    }
    for (int n = 0; n < 3; n++) {
        pid_t pid = waitpid(-1, &status, 0);
        CHECK(pid > 0 && WIFEXITED(status), "waitpid(-1) %d", n);
        if (pid > 0 && WIFEXITED(status))
            seen |= 1 << WEXITSTATUS(status);
    }
    CHECK(seen == 0xe, "each child's status once (%#x)", seen);

    /* WNOHANG while the child sleeps, then the real wait. */
    pid_t pid = fork();
    if (pid == 0) {
        struct timespec nap = {0, 50 * 1000 * 1000};
        nanosleep(&nap, NULL);
        _exit(3);
    }
    CHECK(waitpid(pid, &status, WNOHANG) == 0, "WNOHANG: not ended yet");
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 3, "then it ends");

    /* A child killed by a signal. */
    pid = fork();
    if (pid == 0) {
        return *(volatile int *)nowhere;
    }
    CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
          "a child's SIGSEGV is its status (%#x)", status);
    CHECK_ERR(waitpid(-1, &status, 0x1000), EINVAL);

    /* The kernel writes into pages shared copy-on-write (read() into the
       bss after a fork): each side gets its own copy, no EFAULT. */
    bss_buffer[0] = 1;
    int fd = open("/proc/self/exe", O_RDONLY);
    pid = fork();
    if (pid == 0) {
        int ok = read(fd, bss_buffer, 4) == 4 && memcmp(bss_buffer, "\x7f" "ELF", 4) == 0;
        _exit(ok ? 0 : 1);
    }
    CHECK(pread(fd, bss_buffer + 4096, 4, 1) == 4 && memcmp(bss_buffer + 4096, "ELF", 3) == 0, "the parent reads too");
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child's read() into its copy-on-write bss worked (%#x)", status);
    CHECK(bss_buffer[0] == 1, "and did not reach the parent's page");
    return finish("fork");
}
