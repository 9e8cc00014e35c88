/*
 * Signals sent to one thread (tgkill, tkill, pthread_kill): only that
 * thread takes them. A handler runs on the thread named, even when another
 * thread could take the signal; a signal sent to a thread that blocks it
 * waits, pending for that thread alone (the others' sigpending does not
 * show it), until the thread unblocks it. tgkill's errors in Linux's
 * order: EINVAL for an id that is not positive, ESRCH for a thread that
 * is not there or not in that process, then EINVAL for a bad signal;
 * signal 0 only checks. After the main thread has ended (pthread_exit),
 * its id, the pid, is still found, and a signal sent to it reaches no
 * other thread.
 */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }
static long tgkill_(pid_t tgid, pid_t tid, int sig) { return syscall(SYS_tgkill, tgid, tid, sig); }
static long tkill_(pid_t tid, int sig) { return syscall(SYS_tkill, tid, sig); }

static atomic_int handled_on; /* the tid the last handler ran on */
static atomic_int handled_count;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&handled_on, gettid_());
    atomic_fetch_add(&handled_count, 1);
}

/* The worker's steps, driven by the main thread. */
static atomic_int stage;
static atomic_int worker_tid;
static atomic_int worker_saw_pending; /* SIGUSR2 in the worker's sigpending */

static void wait_stage(int wanted) {
    while (atomic_load(&stage) < wanted)
        sched_yield();
}

static void *worker(void *arg) {
    (void)arg;
    atomic_store(&worker_tid, gettid_());
    /* The worker blocks SIGUSR2 (not SIGUSR1). */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    atomic_store(&stage, 1);
    /* Stage 2: the main thread sent SIGUSR2 to this thread. */
    wait_stage(2);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    atomic_store(&worker_saw_pending, sigismember(&pending, SIGUSR2));
    atomic_store(&stage, 3);
    /* Stage 4: unblock it; it is delivered here, now. */
    wait_stage(4);
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
    atomic_store(&stage, 5);
    /* Stage 6: the main thread is done. */
    wait_stage(6);
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec span = {0, ms * 1000000L};
    nanosleep(&span, NULL);
}

/* The last thread, once the main thread has ended. */
static void *last_thread(void *arg) {
    pid_t pid = (pid_t)(long)arg;
    sleep_ms(100);
    int before = atomic_load(&handled_count);
    CHECK(tgkill_(pid, pid, 0) == 0, "the ended main thread's id is still found");
    CHECK(tgkill_(pid, pid, SIGUSR1) == 0, "a signal to the ended main thread is accepted");
    sleep_ms(20);
    CHECK(atomic_load(&handled_count) == before, "and reaches no other thread (%d handlers)",
          atomic_load(&handled_count) - before);
    exit(finish("sig_thread"));
}

int main(void) {
    struct sigaction action = {0};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGUSR1, &action, NULL) == 0, "sigaction SIGUSR1");
    CHECK(sigaction(SIGUSR2, &action, NULL) == 0, "sigaction SIGUSR2");
    pid_t pid = getpid();

    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, worker, NULL) == 0, "pthread_create");
    wait_stage(1);
    pid_t tid = atomic_load(&worker_tid);
    CHECK(tid > 0 && tid != pid, "the worker has its own tid (%d)", tid);

    /* SIGUSR1 to the worker: neither thread blocks it, the worker takes it. */
    CHECK(tgkill_(pid, tid, SIGUSR1) == 0, "tgkill to the worker");
    for (int spins = 0; atomic_load(&handled_count) < 1 && spins < 1000000; spins++)
        sched_yield();
    CHECK(atomic_load(&handled_count) == 1, "the handler ran once (%d)", atomic_load(&handled_count));
    CHECK(atomic_load(&handled_on) == tid, "on the worker (%d, not %d)", atomic_load(&handled_on), tid);

    /* pthread_kill to the worker, and tkill to the main thread itself. */
    CHECK(pthread_kill(thread, SIGUSR1) == 0, "pthread_kill");
    for (int spins = 0; atomic_load(&handled_count) < 2 && spins < 1000000; spins++)
        sched_yield();
    CHECK(atomic_load(&handled_on) == tid, "pthread_kill: on the worker (%d)", atomic_load(&handled_on));
    CHECK(tkill_(pid, SIGUSR1) == 0 && atomic_load(&handled_on) == pid,
          "tkill to the main thread runs the handler here, before the call returns (%d)", atomic_load(&handled_on));

    /* SIGUSR2 to the worker, which blocks it: pending for it alone. The
       main thread blocks it too for a while, so that its own sigpending
       would show a signal sent to the process. */
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    int before = atomic_load(&handled_count);
    CHECK(tgkill_(pid, tid, SIGUSR2) == 0, "tgkill SIGUSR2");
    atomic_store(&stage, 2);
    wait_stage(3);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGUSR2), "the main thread's sigpending does not show the worker's signal");
    CHECK(atomic_load(&worker_saw_pending) == 1, "the worker's sigpending shows it");
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
    CHECK(atomic_load(&handled_count) == before, "nobody took it while the worker blocks it (not the main thread)");
    atomic_store(&stage, 4);
    wait_stage(5);
    CHECK(atomic_load(&handled_count) == before + 1 && atomic_load(&handled_on) == tid,
          "unblocked, the worker takes it (%d handlers, on %d)", atomic_load(&handled_count) - before,
          atomic_load(&handled_on));

    /* Errors, in Linux's order. */
    CHECK_ERR(tgkill_(0, tid, SIGUSR1), EINVAL);
    CHECK_ERR(tgkill_(pid, 0, SIGUSR1), EINVAL);
    CHECK_ERR(tgkill_(pid, -1, SIGUSR1), EINVAL);
    CHECK_ERR(tkill_(0, SIGUSR1), EINVAL);
    CHECK_ERR(tgkill_(pid, 0x3ffffff0, SIGUSR1), ESRCH);
    CHECK_ERR(tgkill_(pid, 0x3ffffff0, 1000), ESRCH);
    CHECK_ERR(tgkill_(pid + 100000, tid, SIGUSR1), ESRCH);
    CHECK_ERR(tgkill_(pid, tid, 1000), EINVAL);
    CHECK(tgkill_(pid, tid, 0) == 0, "signal 0 to the worker: it is there");
    CHECK(tkill_(tid, 0) == 0, "tkill signal 0");

    atomic_store(&stage, 6);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join");
    /* Gone (Linux may take a moment to release an ended thread's id). */
    long gone = 0;
    for (int tries = 0; tries < 100000 && (gone = tgkill_(pid, tid, 0)) == 0; tries++)
        sched_yield();
    CHECK(gone == -1 && errno == ESRCH, "an ended thread is not there (%ld, errno %d)", gone, errno);

    /* The main thread ends first; the last thread checks and exits. */
    pthread_t last;
    CHECK(pthread_create(&last, NULL, last_thread, (void *)(long)pid) == 0, "pthread_create last");
    pthread_exit(NULL);
}
