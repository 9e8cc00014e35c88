/*
 * Futexes shared between processes: a word of a MAP_SHARED mapping (shared
 * anonymous memory, and a memfd) that a forked child waits on with
 * FUTEX_WAIT (no FUTEX_PRIVATE_FLAG) is woken by the parent's FUTEX_WAKE on
 * the same word at its own address; a private wake (FUTEX_WAKE_PRIVATE)
 * from the other process reaches no one; a shared wake on private memory
 * reaches no other process (copy-on-write pages are the process's own);
 * FUTEX_WAKE on an unmapped word is EFAULT without the private flag and 0
 * with it, as Linux keys them.
 */
#define _GNU_SOURCE
#include "check.h"
#include <linux/futex.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout) {
    return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

/* A child that waits (up to 5 s) on *word while it is 0; exits 0 when woken. */
static pid_t waiter(uint32_t *word) {
    pid_t child = fork();
    if (child == 0) {
        struct timespec five = {5, 0};
        long got = futex(word, FUTEX_WAIT, 0, &five);
        _exit(got == 0 ? 0 : 1);
    }
    return child;
}

/* Wakes the waiter on *word with `op` until one is woken or ~2 s pass; how many. */
static long wake_until(uint32_t *word, int op, int tries) {
    for (int i = 0; i < tries; i++) {
        long woken = futex(word, op, 1, NULL);
        if (woken != 0)
            return woken;
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    return 0;
}

static void across_fork(uint32_t *word, const char *what) {
    *word = 0;
    pid_t child = waiter(word);
    CHECK(child > 0, "%s: fork", what);
    CHECK(wake_until(word, FUTEX_WAKE_PRIVATE, 20) == 0, "%s: a private wake reaches no other process", what);
    CHECK(wake_until(word, FUTEX_WAKE, 200) == 1, "%s: the shared wake reaches the child", what);
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s: the child was woken, not timed out (%#x)", what, status);
}

int main(void) {
    uint32_t *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED, "shared anonymous memory");
    across_fork(anon + 3, "shared anonymous");

    int fd = memfd_create("futex", 0);
    CHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "a memfd");
    uint32_t *file = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(file != MAP_FAILED, "mapped shared");
    across_fork(file + 1024 + 5, "memfd");

    /* Private memory: after fork each process has its own page. */
    static uint32_t private_word;
    pid_t child = waiter(&private_word);
    struct timespec settle = {0, 100 * 1000 * 1000};
    nanosleep(&settle, NULL);
    CHECK(futex(&private_word, FUTEX_WAKE, 1, NULL) == 0, "a wake on private memory reaches no other process");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);

    CHECK_ERR(futex((uint32_t *)8, FUTEX_WAKE, 1, NULL), EFAULT);
    CHECK(futex((uint32_t *)8, FUTEX_WAKE_PRIVATE, 1, NULL) == 0, "a private wake needs no page");
    return finish("futex_shared");
}
