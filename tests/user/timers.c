/*
 * Time and timers: alarm returns what was left of the previous alarm and
 * alarm(0) cancels it; setitimer and getitimer agree on the value and the
 * interval of each kind of timer; SIGALRM (si_code SI_KERNEL) reaches a
 * program spinning in user mode without system calls, again and again
 * with an interval; SIGVTALRM and SIGPROF come after CPU time; SIGALRM
 * interrupts a read of an empty pipe with EINTR, or restarts it under
 * SA_RESTART (the handler writes what the restarted read returns); pause
 * ends with EINTR; the errors in Linux's order (EFAULT for the new value
 * before EINVAL, EINVAL for a bad timeval before a bad `which`, the old
 * value written after the timer is set); times and getrusage move forward
 * for the process and for the children it waited for; a forked child
 * starts without the parent's timer, a timer outlives execve, and an
 * uncaught SIGALRM ends the process. POSIX timers (raw system calls, the
 * kernel's ids): a signal with si_code SI_TIMER and the timer's id, once
 * or every interval, at once for an absolute time past; SIGALRM without
 * an event; SIGEV_NONE read through timer_gettime; an overrun counted
 * while the signal is blocked; the errors in Linux's order; deleted ids
 * gone; neither inherited by a forked child nor kept across execve.
 * Timings are short and only their order and bounds are checked.
 */
#define _GNU_SOURCE
#include "check.h"
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

/* About 10 s at 1 GHz: the longest any spin below waits for its signal. */
#define SPIN_LIMIT 10000000000ULL

static volatile int alarms, vtalarms, profs, last_code;
static volatile int usr1s, usr1_code, usr1_timerid, usr1_overrun;
static volatile int overrun_timer = -1;
static int pipe_fds[2];

static void on_alarm(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    last_code = info->si_code;
    alarms++;
}

static void on_usr1(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    usr1_code = info->si_code;
    usr1_timerid = info->si_timerid;
    if (overrun_timer >= 0) {
        /* Once: 20 ms first, while the timer fires again (its signal is
         * blocked in here), which must not change the overrun of the
         * signal already delivered. */
        int timer = overrun_timer;
        overrun_timer = -1;
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        do
            clock_gettime(CLOCK_MONOTONIC, &now);
        while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 20000000L);
        usr1_overrun = syscall(SYS_timer_getoverrun, timer);
    }
    usr1s++;
}

static void on_alarm_write(int sig) {
    (void)sig;
    alarms++;
    (void)!write(pipe_fds[1], "x", 1);
}

static void on_vtalarm(int sig) {
    (void)sig;
    vtalarms++;
}

static void on_prof(int sig) {
    (void)sig;
    profs++;
}

static void handle(int sig, void (*handler)(int), int flags) {
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
}

static long set_timer(int which, long value_usec, long interval_usec, struct itimerval *old) {
    struct itimerval it = {{interval_usec / 1000000, interval_usec % 1000000}, {value_usec / 1000000, value_usec % 1000000}};
    return syscall(SYS_setitimer, which, &it, old);
}

static long usec(struct timeval t) { return t.tv_sec * 1000000L + t.tv_usec; }

/* Spins in user mode, no system call, until *counter reaches `until`. */
static int spin_until(volatile int *counter, int until) {
    uint64_t start = __rdtsc();
    while (*counter < until)
        if (__rdtsc() - start > SPIN_LIMIT)
            return 0;
    return 1;
}

static long cpu_usec(int who) {
    struct rusage ru;
    if (getrusage(who, &ru) != 0)
        return -1;
    return usec(ru.ru_utime) + usec(ru.ru_stime);
}

static void alarm_calls(void) {
    CHECK(alarm(0) == 0, "no alarm at the start");
    CHECK(alarm(10) == 0, "the first alarm: nothing left of a previous one");
    unsigned left = alarm(5);
    CHECK(left == 9 || left == 10, "alarm(5) returns what is left of alarm(10): %u", left);
    struct itimerval now;
    CHECK(getitimer(ITIMER_REAL, &now) == 0, "getitimer REAL");
    CHECK(usec(now.it_value) > 4000000 && usec(now.it_value) <= 5000000 && usec(now.it_interval) == 0,
          "alarm(5) is ITIMER_REAL at 5 s without interval (%ld, %ld)", usec(now.it_value), usec(now.it_interval));
    left = alarm(0);
    CHECK(left == 4 || left == 5, "alarm(0) returns what was left: %u", left);
    CHECK(getitimer(ITIMER_REAL, &now) == 0 && usec(now.it_value) == 0, "alarm(0) cancelled it");
    CHECK(alarm(0) == 0, "nothing left after the cancel");
}

static void round_trips(void) {
    struct itimerval old, now;
    CHECK(set_timer(ITIMER_REAL, 2000000, 250000, NULL) == 0, "setitimer REAL 2 s, every 0.25 s");
    CHECK(getitimer(ITIMER_REAL, &now) == 0, "getitimer REAL");
    CHECK(usec(now.it_interval) == 250000, "the interval reads back (%ld)", usec(now.it_interval));
    CHECK(usec(now.it_value) > 1000000 && usec(now.it_value) <= 2000000, "the value counts down (%ld)",
          usec(now.it_value));
    CHECK(set_timer(ITIMER_REAL, 0, 0, &old) == 0, "disarm, reading the old value");
    CHECK(usec(old.it_interval) == 250000 && usec(old.it_value) > 0 && usec(old.it_value) <= usec(now.it_value),
          "the old value is what was armed (%ld, %ld)", usec(old.it_value), usec(old.it_interval));
    CHECK(getitimer(ITIMER_REAL, &now) == 0 && usec(now.it_value) == 0 && usec(now.it_interval) == 0,
          "disarmed: value and interval 0");

    int kinds[2] = {ITIMER_VIRTUAL, ITIMER_PROF};
    for (int i = 0; i < 2; i++) {
        CHECK(set_timer(kinds[i], 5000000, 1000000, NULL) == 0, "setitimer %d 5 s, every 1 s", kinds[i]);
        CHECK(getitimer(kinds[i], &now) == 0, "getitimer %d", kinds[i]);
        /* Linux adds a tick to a CPU-time timer's value. */
        CHECK(usec(now.it_interval) == 1000000 && usec(now.it_value) > 4000000 && usec(now.it_value) <= 5100000,
              "timer %d reads back (%ld, %ld)", kinds[i], usec(now.it_value), usec(now.it_interval));
        CHECK(set_timer(kinds[i], 0, 0, &old) == 0 && usec(old.it_interval) == 1000000 && usec(old.it_value) > 0,
              "timer %d disarmed, the old value read", kinds[i]);
        CHECK(getitimer(kinds[i], &now) == 0 && usec(now.it_value) == 0, "timer %d disarmed", kinds[i]);
    }
}

static void errors(void) {
    struct itimerval it = {{0, 0}, {1, 0}}, out;
    CHECK_ERR(syscall(SYS_setitimer, 5, &it, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_getitimer, 5, &out), EINVAL);
    CHECK_ERR(syscall(SYS_getitimer, -1, (void *)16), EINVAL);
    CHECK_ERR(syscall(SYS_setitimer, ITIMER_REAL, (void *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_setitimer, 5, (void *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_getitimer, ITIMER_REAL, (void *)16), EFAULT);
    struct itimerval bad[4] = {
        {{0, 0}, {0, 1000000}}, {{0, 0}, {0, -1}}, {{0, 0}, {-1, 0}}, {{0, 1000000}, {1, 0}},
    };
    for (int i = 0; i < 4; i++) {
        CHECK_ERR(syscall(SYS_setitimer, ITIMER_REAL, &bad[i], NULL), EINVAL);
        CHECK_ERR(syscall(SYS_setitimer, 5, &bad[i], NULL), EINVAL);
    }
    CHECK(getitimer(ITIMER_REAL, &out) == 0 && usec(out.it_value) == 0, "nothing armed by the refused calls");
    /* The old value is written after the timer is set. */
    it = (struct itimerval){{0, 0}, {100, 0}};
    CHECK_ERR(syscall(SYS_setitimer, ITIMER_REAL, &it, (void *)16), EFAULT);
    CHECK(getitimer(ITIMER_REAL, &out) == 0 && usec(out.it_value) > 99000000, "set despite the EFAULT");
    alarm(0);

    struct rusage ru;
    CHECK_ERR(syscall(SYS_getrusage, 2, &ru), EINVAL);
    CHECK_ERR(syscall(SYS_getrusage, -2, &ru), EINVAL);
    CHECK_ERR(syscall(SYS_getrusage, 7, (void *)16), EINVAL);
    CHECK_ERR(syscall(SYS_getrusage, RUSAGE_SELF, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_getrusage, RUSAGE_CHILDREN, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_getrusage, RUSAGE_THREAD, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_times, (void *)16), EFAULT);
}

static void delivery(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, NULL);

    alarms = 0;
    CHECK(set_timer(ITIMER_REAL, 20000, 0, NULL) == 0, "a timer in 20 ms");
    CHECK(spin_until(&alarms, 1), "SIGALRM reaches a program spinning in user mode");
    CHECK(last_code == SI_KERNEL, "SIGALRM from a timer: si_code SI_KERNEL (%d)", last_code);
    struct itimerval now;
    CHECK(getitimer(ITIMER_REAL, &now) == 0 && usec(now.it_value) == 0, "a timer without interval fires once");

    alarms = 0;
    CHECK(set_timer(ITIMER_REAL, 10000, 10000, NULL) == 0, "every 10 ms");
    CHECK(spin_until(&alarms, 3), "the interval re-arms it: three signals (%d)", alarms);
    CHECK(getitimer(ITIMER_REAL, &now) == 0 && usec(now.it_interval) == 10000 && usec(now.it_value) > 0,
          "still armed, with its interval");
    set_timer(ITIMER_REAL, 0, 0, NULL);

    handle(SIGVTALRM, on_vtalarm, 0);
    handle(SIGPROF, on_prof, 0);
    CHECK(set_timer(ITIMER_VIRTUAL, 20000, 0, NULL) == 0, "ITIMER_VIRTUAL in 20 ms of user time");
    CHECK(spin_until(&vtalarms, 1), "SIGVTALRM after user CPU time");
    CHECK(set_timer(ITIMER_PROF, 20000, 20000, NULL) == 0, "ITIMER_PROF every 20 ms of CPU time");
    CHECK(spin_until(&profs, 2), "SIGPROF after CPU time, twice (%d)", profs);
    set_timer(ITIMER_PROF, 0, 0, NULL);
}

static void blocking(void) {
    char c = 0;
    CHECK(pipe(pipe_fds) == 0, "pipe");

    handle(SIGALRM, on_alarm_write, 0);
    alarms = 0;
    set_timer(ITIMER_REAL, 30000, 0, NULL);
    CHECK_ERR(read(pipe_fds[0], &c, 1), EINTR);
    CHECK(alarms == 1, "the handler ran before the read returned (%d)", alarms);
    CHECK(read(pipe_fds[0], &c, 1) == 1 && c == 'x', "the handler's byte is there");

    handle(SIGALRM, on_alarm_write, SA_RESTART);
    alarms = 0;
    c = 0;
    set_timer(ITIMER_REAL, 30000, 0, NULL);
    CHECK(read(pipe_fds[0], &c, 1) == 1 && c == 'x', "under SA_RESTART the read restarts and reads the handler's byte");
    CHECK(alarms == 1, "the handler ran once (%d)", alarms);

    handle(SIGALRM, on_alarm_write, 0);
    alarms = 0;
    set_timer(ITIMER_REAL, 20000, 0, NULL);
    CHECK_ERR(pause(), EINTR);
    CHECK(alarms == 1, "pause ended by the handler");
    CHECK(read(pipe_fds[0], &c, 1) == 1, "drained");
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    handle(SIGALRM, SIG_DFL, 0);
}

static void usage(void) {
    struct tms before, after;
    long start = syscall(SYS_times, &before);
    long cpu = cpu_usec(RUSAGE_SELF);
    CHECK(cpu >= 0, "getrusage SELF");
    struct rusage first, then;
    getrusage(RUSAGE_SELF, &first);

    /* Spin until the CPU time moves (bounded), touching new pages. */
    uint64_t spin_start = __rdtsc();
    while (cpu_usec(RUSAGE_SELF) <= cpu && __rdtsc() - spin_start < SPIN_LIMIT)
        for (volatile int i = 0; i < 100000; i++)
            ;
    CHECK(cpu_usec(RUSAGE_SELF) > cpu, "the CPU time moves forward");
    size_t size = 64 * 4096;
    char *pages = malloc(size);
    memset(pages, 1, size);
    getrusage(RUSAGE_SELF, &then);
    CHECK(then.ru_minflt > first.ru_minflt, "touching new pages counts minor faults (%ld -> %ld)", first.ru_minflt,
          then.ru_minflt);
    free(pages);
    long end = syscall(SYS_times, &after);
    CHECK(end >= start, "times' clock moves forward (%ld -> %ld)", start, end);
    CHECK(after.tms_utime + after.tms_stime >= before.tms_utime + before.tms_stime, "times' CPU time too");
    CHECK(syscall(SYS_times, NULL) >= end, "times(NULL) returns the clock");
    CHECK(cpu_usec(RUSAGE_THREAD) >= 0, "getrusage THREAD");

    /* A child's usage counts once it is waited for. */
    struct rusage children, waited;
    getrusage(RUSAGE_CHILDREN, &children);
    pid_t child = fork();
    if (child == 0) {
        long mine = cpu_usec(RUSAGE_SELF);
        uint64_t child_start = __rdtsc();
        while (cpu_usec(RUSAGE_SELF) <= mine && __rdtsc() - child_start < SPIN_LIMIT)
            for (volatile int i = 0; i < 100000; i++)
                ;
        char *more = malloc(size);
        memset(more, 2, size);
        _exit(0);
    }
    int status;
    CHECK(wait4(child, &status, 0, &waited) == child && WIFEXITED(status), "the child ends");
    CHECK(usec(waited.ru_utime) + usec(waited.ru_stime) > 0 && waited.ru_minflt > 0,
          "wait4's rusage has the child's CPU time and faults");
    struct rusage children_after;
    getrusage(RUSAGE_CHILDREN, &children_after);
    CHECK(usec(children_after.ru_utime) + usec(children_after.ru_stime) >
              usec(children.ru_utime) + usec(children.ru_stime),
          "RUSAGE_CHILDREN has the child's CPU time");
    CHECK(children_after.ru_minflt > children.ru_minflt, "and its faults");
    struct tms with_child;
    syscall(SYS_times, &with_child);
    CHECK(with_child.tms_cutime + with_child.tms_cstime >= after.tms_cutime + after.tms_cstime,
          "times' children CPU time does not go back");
}

static long nsec(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

static long set_posix(int id, int flags, long value_ns, long interval_ns, struct itimerspec *old) {
    struct itimerspec it = {{interval_ns / 1000000000L, interval_ns % 1000000000L},
                            {value_ns / 1000000000L, value_ns % 1000000000L}};
    return syscall(SYS_timer_settime, id, flags, &it, old);
}

static int create_posix(int clock, int notify, int signo) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = notify;
    sev.sigev_signo = signo;
    int id = -1;
    if (syscall(SYS_timer_create, clock, &sev, &id) != 0)
        return -1;
    return id;
}

static void posix_timers(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);

    int id = create_posix(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1);
    CHECK(id >= 0, "timer_create MONOTONIC, SIGEV_SIGNAL SIGUSR1");
    struct itimerspec now, old;
    CHECK(syscall(SYS_timer_gettime, id, &now) == 0 && nsec(now.it_value) == 0 && nsec(now.it_interval) == 0,
          "a new timer is disarmed");
    CHECK(set_posix(id, 0, 1000000000L, 250000000L, NULL) == 0, "timer_settime 1 s, every 0.25 s");
    CHECK(syscall(SYS_timer_gettime, id, &now) == 0 && nsec(now.it_interval) == 250000000L &&
              nsec(now.it_value) > 900000000L && nsec(now.it_value) <= 1000000000L,
          "timer_gettime reads it back (%ld, %ld)", nsec(now.it_value), nsec(now.it_interval));
    CHECK(set_posix(id, 0, 20000000L, 0, &old) == 0 && nsec(old.it_interval) == 250000000L &&
              nsec(old.it_value) > 0 && nsec(old.it_value) <= 1000000000L,
          "re-set to 20 ms once, the old value read");
    usr1s = 0;
    CHECK(spin_until(&usr1s, 1), "the timer's signal reaches a spinning program");
    CHECK(usr1_code == SI_TIMER && usr1_timerid == id, "si_code SI_TIMER (%d), si_timerid the id (%d, %d)", usr1_code,
          usr1_timerid, id);
    CHECK(syscall(SYS_timer_gettime, id, &now) == 0 && nsec(now.it_value) == 0, "a one-shot timer is spent");

    usr1s = 0;
    CHECK(set_posix(id, 0, 10000000L, 10000000L, NULL) == 0, "every 10 ms");
    CHECK(spin_until(&usr1s, 3), "three signals (%d)", usr1s);
    CHECK(set_posix(id, 0, 0, 10000000L, NULL) == 0, "a zero value disarms");
    CHECK(syscall(SYS_timer_gettime, id, &now) == 0 && nsec(now.it_value) == 0 && nsec(now.it_interval) == 0,
          "disarmed: value and interval 0");

    usr1s = 0;
    CHECK(set_posix(id, TIMER_ABSTIME, 1, 0, NULL) == 0, "an absolute time long past");
    CHECK(spin_until(&usr1s, 1), "fires at once");

    /* Blocked, a fast timer overruns; the handler reads the overrun. */
    sigset_t usr1, none;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &usr1, NULL);
    usr1s = 0;
    overrun_timer = id;
    CHECK(set_posix(id, 0, 1000000L, 1000000L, NULL) == 0, "every 1 ms, blocked");
    struct timespec wait = {0, 60000000L};
    nanosleep(&wait, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    CHECK(spin_until(&usr1s, 1), "delivered once unblocked");
    set_posix(id, 0, 0, 0, NULL);
    overrun_timer = -1;
    CHECK(usr1_overrun >= 30, "the expirations while blocked (60 ms, every 1 ms) are the delivered signal's overrun (%d)",
          usr1_overrun);

    CHECK(syscall(SYS_timer_delete, id) == 0, "timer_delete");
    CHECK_ERR(syscall(SYS_timer_gettime, id, &now), EINVAL);
    CHECK_ERR(syscall(SYS_timer_delete, id), EINVAL);

    /* No event: SIGALRM, with the timer's id. */
    struct sigaction alarm_sa = {0};
    alarm_sa.sa_sigaction = on_alarm;
    alarm_sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &alarm_sa, NULL);
    int plain = -1;
    CHECK(syscall(SYS_timer_create, CLOCK_REALTIME, NULL, &plain) == 0, "timer_create without an event");
    alarms = 0;
    CHECK(set_posix(plain, 0, 20000000L, 0, NULL) == 0, "in 20 ms");
    CHECK(spin_until(&alarms, 1) && last_code == SI_TIMER, "SIGALRM, SI_TIMER (%d)", last_code);
    CHECK(syscall(SYS_timer_delete, plain) == 0, "deleted");
    handle(SIGALRM, SIG_DFL, 0);

    /* SIGEV_NONE: nothing is sent; timer_gettime tells the time. */
    int quiet = create_posix(CLOCK_MONOTONIC, SIGEV_NONE, 0);
    CHECK(quiet >= 0, "timer_create SIGEV_NONE");
    CHECK(set_posix(quiet, 0, 10000000L, 0, NULL) == 0, "once, in 10 ms");
    wait = (struct timespec){0, 30000000L};
    nanosleep(&wait, NULL);
    CHECK(syscall(SYS_timer_gettime, quiet, &now) == 0 && nsec(now.it_value) == 0, "spent (%ld)", nsec(now.it_value));
    CHECK(set_posix(quiet, 0, 10000000L, 20000000L, NULL) == 0, "every 20 ms");
    nanosleep(&wait, NULL);
    CHECK(syscall(SYS_timer_gettime, quiet, &now) == 0 && nsec(now.it_value) > 0 &&
              nsec(now.it_value) <= 20000000L && nsec(now.it_interval) == 20000000L,
          "a periodic one counts to its next period (%ld)", nsec(now.it_value));
    CHECK(syscall(SYS_timer_delete, quiet) == 0, "deleted");

    /* Errors, in Linux's order. */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR1;
    int out;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, (void *)16, &out), EFAULT);
    CHECK_ERR(syscall(SYS_timer_create, 12345, (void *)16, &out), EFAULT);
    CHECK_ERR(syscall(SYS_timer_create, 12345, &sev, &out), EINVAL);
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC_RAW, &sev, &out), EOPNOTSUPP);
    sev.sigev_notify = 99;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &out), EINVAL);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = 0;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &out), EINVAL);
    sev.sigev_signo = 65;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &out), EINVAL);
    sev.sigev_signo = SIGUSR1;
    CHECK_ERR(syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, (void *)16), EFAULT);
    id = create_posix(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1);
    CHECK(id >= 0, "another timer");
    struct itimerspec bad = {{0, 0}, {0, 1000000000L}};
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, NULL, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, (void *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_timer_settime, 99999, 0, (void *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &bad, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_timer_settime, 99999, 0, &bad, NULL), EINVAL);
    bad = (struct itimerspec){{0, -1}, {1, 0}};
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &bad, NULL), EINVAL);
    struct itimerspec fine = {{0, 0}, {100, 0}};
    CHECK_ERR(syscall(SYS_timer_settime, 99999, 0, &fine, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_timer_settime, id, 0, &fine, (void *)16), EFAULT);
    CHECK(syscall(SYS_timer_gettime, id, &now) == 0 && nsec(now.it_value) > 99000000000L,
          "set despite the EFAULT");
    CHECK_ERR(syscall(SYS_timer_gettime, 99999, &now), EINVAL);
    CHECK_ERR(syscall(SYS_timer_gettime, id, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_timer_getoverrun, 99999), EINVAL);
    CHECK(syscall(SYS_timer_getoverrun, id) == 0, "no overrun yet");
    CHECK_ERR(syscall(SYS_timer_delete, 99999), EINVAL);

    /* Not inherited by a forked child. */
    pid_t child = fork();
    if (child == 0)
        _exit(syscall(SYS_timer_gettime, id, &now) == -1 && errno == EINVAL ? 0 : 1);
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child has no POSIX timer");
    CHECK(syscall(SYS_timer_delete, id) == 0, "deleted");
}

static void processes(const char *self) {
    /* A forked child starts without the parent's timer. */
    CHECK(alarm(100) == 0, "alarm(100)");
    pid_t child = fork();
    if (child == 0) {
        struct itimerval now;
        _exit(getitimer(ITIMER_REAL, &now) == 0 && usec(now.it_value) == 0 ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child has no timer");

    /* A timer outlives execve: the new program finds it. */
    child = fork();
    if (child == 0) {
        alarm(100);
        static char id_text[16];
        int id = create_posix(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1);
        snprintf(id_text, sizeof id_text, "%d", id);
        char *args[] = {(char *)self, "exec-child", id_text, NULL};
        char *env[] = {NULL};
        execve("/proc/self/exe", args, env);
        _exit(2);
    }
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the alarm outlives execve, the POSIX timer does not (status %#x)", status);
    alarm(0);

    /* An uncaught SIGALRM ends the process. */
    child = fork();
    if (child == 0) {
        set_timer(ITIMER_REAL, 20000, 0, NULL);
        for (;;)
            pause();
    }
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM, "killed by SIGALRM (status %#x)", status);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "exec-child") == 0) {
        /* Run by the parent's child after it set alarm(100), created POSIX
           timer argv[2] and exec'd: the alarm is there, the timer is not. */
        unsigned left = alarm(0);
        struct itimerspec spec;
        int gone = syscall(SYS_timer_gettime, atoi(argv[2]), &spec) == -1 && errno == EINVAL;
        return left >= 98 && left <= 100 && gone ? 0 : 1;
    }
    alarm_calls();
    round_trips();
    errors();
    delivery();
    blocking();
    usage();
    posix_timers();
    processes(argv[0]);
    return finish("timers");
}
