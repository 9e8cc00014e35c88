/*
 * Threads (pthread_create: clone with CLONE_VM | CLONE_THREAD | ...): they
 * share memory, each has its own tid and stack and TLS, a mutex and a
 * condition variable work (futex WAIT/WAKE), pthread_join returns each
 * thread's result (CLONE_CHILD_CLEARTID wakes it), and a thread's exit
 * leaves the others running, and a new thread inherits its creator's CPU
 * mask. A sibling spinning in ring 3, with no system call in its loop,
 * takes a signal sent to the process (which the other thread blocks), and
 * ends when another thread calls exit_group.
 * Threads run on several CPUs at once and touch
 * a region another thread unmaps and maps again: they see the old or the
 * new contents or a fault, never stale memory. (Each time, a decoy page is
 * mapped first, so that a stale translation would show the decoy's marker;
 * with Nacre's remote shootdowns switched off, `shootdowns off`, it does.)
 */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static long counter;
static int started;
static __thread int tls_value;
static pid_t tids[THREADS];

static void *worker(void *arg) {
    long index = (long)arg;
    tls_value = (int)index * 10;
    tids[index] = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&lock);
    started++;
    pthread_cond_broadcast(&ready);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
    }
    return (void *)(index * 100 + tls_value);
}

/* The remap stress: one thread maps a page with a value, unmaps it, maps it
   again with the next value; readers check what they read. */
static volatile int stop;
static volatile uint64_t *volatile shared_page;
static uint64_t generation_seen_max;
static sigjmp_buf reader_jump[THREADS];
static __thread int reader_index = -1;
static volatile long stale;
#define DECOY 0xdecaf00ddecaf00dULL
static volatile uint64_t final_generation;

static void on_segv(int sig) {
    (void)sig;
    siglongjmp(reader_jump[reader_index], 1);
}

static void *reader(void *arg) {
    reader_index = (int)(long)arg;
    uint64_t last = 0;
    while (!stop) {
        if (sigsetjmp(reader_jump[reader_index], 1) == 0) {
            uint64_t value = *shared_page;
            /* A page's value never goes back, and the decoy's marker is
               another mapping's memory: both are stale translations. */
            if (value == DECOY || (value != 0 && value + 1 < last))
                stale++;
            if (value > last)
                last = value;
        }
    }
    /* After the last generation: the last value, or a fault (unmapped). */
    if (sigsetjmp(reader_jump[reader_index], 1) == 0) {
        uint64_t value = *shared_page;
        if (value != final_generation)
            stale++;
    }
    return NULL;
}

/* A new thread starts with its creator's CPU mask, and runs within it. */
static cpu_set_t inherited;
static int inherited_ok, ran_on;

static void *read_affinity(void *arg) {
    (void)arg;
    inherited_ok = sched_getaffinity(0, sizeof inherited, &inherited) == 0;
    ran_on = sched_getcpu();
    return NULL;
}

static void affinity_inherited(void) {
    cpu_set_t all, one;
    CHECK(sched_getaffinity(0, sizeof all, &all) == 0, "sched_getaffinity");
    int last = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &all))
            last = cpu;
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pin to CPU %d", last);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, read_affinity, NULL) == 0 && pthread_join(thread, NULL) == 0,
          "a thread of the pinned creator");
    CHECK(inherited_ok && CPU_EQUAL(&inherited, &one), "the new thread inherits the pinning to CPU %d", last);
    CHECK(ran_on == last, "the new thread runs on CPU %d (%d)", last, ran_on);
    CHECK(sched_setaffinity(0, sizeof all, &all) == 0, "every CPU again");
}

/* Written by the spinner below, which makes no system call while it spins. */
static volatile int spinner_stage;
static volatile int poked;

static void on_usr1(int sig) {
    (void)sig;
    poked = 1;
}

static void *spinner(void *arg) {
    (void)arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
    spinner_stage = 1;
    while (!poked)
        ;
    spinner_stage = 2;
    for (;;)
        ;
    return NULL;
}

/* Waits (yielding) until the spinner reaches `stage`; false after 20 s. */
static int await_stage(int stage) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (spinner_stage < stage) {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 20)
            return 0;
    }
    return 1;
}

/* In a child, whose status tells: a thread spinning in ring 3 takes the
 * signal sent to its process, which the main thread blocks (when an
 * interrupt returns to it), then the main thread's exit_group ends the
 * process while the sibling still spins. */
static void spinning_sibling(void) {
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        signal(SIGUSR1, on_usr1);
        sigset_t usr1;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &usr1, NULL);
        pthread_t thread;
        if (pthread_create(&thread, NULL, spinner, NULL) != 0 || !await_stage(1))
            _exit(2);
        if (kill(getpid(), SIGUSR1) != 0)
            _exit(4);
        if (!await_stage(2))
            _exit(3);
        _exit(7);
    }
    /* A child that never ends kills this test with SIGALRM. */
    alarm(60);
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    alarm(0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7,
          "the spinning sibling took its signal, and exit_group ended it (status %#x: 2 no spin, 3 no signal, 4 kill failed)",
          status);
}

int main(void) {
    pthread_t threads[THREADS];
    affinity_inherited();
    spinning_sibling();
    pid_t me = getpid();
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, worker, (void *)i) == 0, "pthread_create %ld", i);
    pthread_mutex_lock(&lock);
    while (started < THREADS)
        pthread_cond_wait(&ready, &lock);
    pthread_mutex_unlock(&lock);
    for (long i = 0; i < THREADS; i++) {
        void *result = NULL;
        CHECK(pthread_join(threads[i], &result) == 0, "pthread_join %ld", i);
        CHECK((long)result == i * 100 + i * 10, "thread %ld's result and TLS (%ld)", i, (long)result);
        CHECK(tids[i] != me && tids[i] > 0, "thread %ld has its own tid (%d)", i, tids[i]);
        for (long j = 0; j < i; j++)
            CHECK(tids[i] != tids[j], "tids differ");
    }
    CHECK(counter == (long)THREADS * ROUNDS, "the mutex kept every increment (%ld)", counter);
    CHECK(getpid() == me && syscall(SYS_gettid) == me, "the main thread's tid is the pid");

    /* The remap stress. */
    signal(SIGSEGV, on_segv);
    void *address = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(address != MAP_FAILED, "mmap");
    shared_page = address;
    *shared_page = 1;
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, reader, (void *)i) == 0, "reader %ld", i);
    uint64_t generation;
    for (generation = 2; generation < 2000; generation++) {
        munmap(address, 4096);
        /* The decoy likely gets the frame just freed. */
        volatile uint64_t *decoy = mmap((char *)address - (1UL << 30) + generation * 4096, 4096, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (decoy != MAP_FAILED)
            *decoy = DECOY;
        void *again = mmap(address, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (again != address)
            break;
        *(volatile uint64_t *)again = generation;
        final_generation = generation;
    }
    stop = 1;
    for (long i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    CHECK(stale == 0, "no reader saw an older page after a newer one (%ld stale reads)", stale);
    (void)generation_seen_max;
    return finish("threads");
}
