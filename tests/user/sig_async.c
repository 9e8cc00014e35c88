/*
 * Signals from another process, and blocking: a child spinning in a loop
 * without system calls is reached (the interrupt's return to ring 3
 * delivers); a read of an empty pipe waits for the other process's write,
 * and a signal interrupts it (EINTR without SA_RESTART, a restart with
 * it); a write to a full pipe waits for the reader; nanosleep and pause end
 * with EINTR; a write with no reader left kills with SIGPIPE.
 */
#define _GNU_SOURCE
#include "check.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

static volatile int hits;
static void on_usr1(int sig) {
    (void)sig;
    hits++;
}

static void handle(int sig, void (*handler)(int), int flags) {
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static void pause_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

/* The child's end: 0 when it exited with 0. */
static int reap(pid_t child) {
    int status = -1;
    if (waitpid(child, &status, 0) != child)
        return -1;
    return status;
}

/* A child that sends SIGUSR1 to this process every 20 ms until stopped
   (so that a signal sent before the call blocks does not leave it
   blocked forever). */
static pid_t pester(void) {
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        for (;;) {
            pause_ms(20);
            kill(parent, SIGUSR1);
        }
    }
    return child;
}

static int stop(pid_t child) {
    kill(child, SIGKILL);
    int status = reap(child);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

static void spinning_child(void) {
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    handle(SIGUSR1, on_usr1, 0);
    pid_t child = fork();
    if (child == 0) {
        write(ready[1], "r", 1);
        /* No system call from here: only an interrupt's return can deliver.
           Bounded by the time-stamp counter (about 20 s at 1 GHz). */
        uint64_t start = __rdtsc();
        while (hits == 0)
            if (__rdtsc() - start > 20000000000ULL)
                _exit(1);
        _exit(0);
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1, "the child is about to spin (a blocking read across processes)");
    pause_ms(30);
    CHECK(kill(child, SIGUSR1) == 0, "kill the child");
    int status = reap(child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the spinning child took the signal (%#x)", status);
    close(ready[0]);
    close(ready[1]);
}

static void interrupted_read(void) {
    int fds[2];
    char c = 0;
    CHECK(pipe(fds) == 0, "pipe");
    pid_t parent = getpid();

    /* Without SA_RESTART: EINTR. */
    handle(SIGUSR1, on_usr1, 0);
    hits = 0;
    pid_t child = pester();
    errno = 0;
    long got = read(fds[0], &c, 1);
    CHECK(got == -1 && errno == EINTR && hits >= 1, "read interrupted: EINTR (%ld %d %d)", got, errno, hits);
    CHECK(stop(child), "child stopped");

    /* With SA_RESTART: the read goes on and gets the byte. */
    handle(SIGUSR1, on_usr1, SA_RESTART);
    hits = 0;
    child = fork();
    if (child == 0) {
        pause_ms(50);
        kill(parent, SIGUSR1);
        pause_ms(50);
        write(fds[1], "x", 1);
        _exit(0);
    }
    got = read(fds[0], &c, 1);
    CHECK(got == 1 && c == 'x' && hits >= 1, "SA_RESTART: restarted, then read the byte (%ld %d)", got, hits);
    CHECK(reap(child) == 0, "child done");

    /* End of file once every writer is gone. */
    child = fork();
    if (child == 0) {
        close(fds[0]);
        pause_ms(30);
        write(fds[1], "yz", 2);
        _exit(0);
    }
    close(fds[1]);
    char buf[8];
    CHECK(read(fds[0], buf, sizeof buf) == 2, "the child's bytes");
    CHECK(read(fds[0], buf, sizeof buf) == 0, "then end of file (the child exited)");
    CHECK(reap(child) == 0, "child done");
    close(fds[0]);
}

static void blocking_write(void) {
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    static char page[65536];
    CHECK(write(fds[1], page, sizeof page) == (long)sizeof page, "fill the pipe");
    pid_t child = fork();
    if (child == 0) {
        pause_ms(50);
        _exit(read(fds[0], page, 4096) == 4096 ? 0 : 1);
    }
    CHECK(write(fds[1], page, 4096) == 4096, "the write waited for room");
    CHECK(reap(child) == 0, "child done");
    close(fds[0]);
    close(fds[1]);

    /* No reader left: SIGPIPE kills the writer. */
    CHECK(pipe(fds) == 0, "pipe");
    close(fds[0]);
    child = fork();
    if (child == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(fds[1], "x", 1);
        _exit(0);
    }
    int status = reap(child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE, "killed by SIGPIPE (%#x)", status);
    close(fds[1]);
}

static void interrupted_sleeps(void) {
    handle(SIGUSR1, on_usr1, SA_RESTART);
    hits = 0;
    pid_t child = pester();
    struct timespec t = {30, 0}, left = {0, 0};
    errno = 0;
    int got = nanosleep(&t, &left);
    CHECK(got == -1 && errno == EINTR && hits >= 1, "nanosleep interrupted even with SA_RESTART (%d %d)", got, errno);
    CHECK(left.tv_sec >= 28 && left.tv_sec <= 30, "the time left (%ld s)", (long)left.tv_sec);
    CHECK(stop(child), "child stopped");

    hits = 0;
    child = pester();
    errno = 0;
    got = pause();
    CHECK(got == -1 && errno == EINTR && hits >= 1, "pause: EINTR after the handler");
    CHECK(stop(child), "child stopped");
}

int main(void) {
    spinning_child();
    interrupted_read();
    blocking_write();
    interrupted_sleeps();
    return finish("sig_async");
}
