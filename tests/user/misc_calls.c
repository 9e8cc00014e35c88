/*
 * Process, time and scheduling calls: clock_getres, sysinfo, ru_maxrss;
 * gettimeofday and time against
 * clock_gettime, nanosleep and clock_nanosleep (errors, a short sleep),
 * setrlimit/getrlimit, sched_getaffinity/sched_setaffinity (a forked child
 * inherits the mask), getcpu, the
 * process group and session calls, rt_sigpending, and the siginfo of the
 * signals a process sends itself (kill: SI_USER, tgkill: SI_TKILL, with the
 * sender's pid). The harness starts the program in its own group and
 * session on neither system necessarily, so only what holds for any
 * process is checked.
 */
#define _GNU_SOURCE
#include "check.h"
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int got_code, got_pid, got_signal;
static void catcher(int sig, siginfo_t *info, void *context) {
    (void)context;
    got_signal = sig;
    got_code = info->si_code;
    got_pid = info->si_pid;
}

static long nanos(const struct timespec *t) { return t->tv_sec * 1000000000L + t->tv_nsec; }

static void time_calls(void) {
    struct timespec before, after;
    struct timeval tv;
    struct timezone tz = {99, 99};
    clock_gettime(CLOCK_REALTIME, &before);
    CHECK(syscall(SYS_gettimeofday, &tv, &tz) == 0, "gettimeofday");
    clock_gettime(CLOCK_REALTIME, &after);
    long tv_nanos = tv.tv_sec * 1000000000L + tv.tv_usec * 1000L;
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "microseconds in range");
    CHECK(tv_nanos >= nanos(&before) - 1000 && tv_nanos <= nanos(&after), "between two clock_gettime readings");
    CHECK(syscall(SYS_gettimeofday, NULL, NULL) == 0, "both pointers NULL");
    CHECK_ERR(syscall(SYS_gettimeofday, (void *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_gettimeofday, NULL, (void *)16), EFAULT);

    time_t stored = 0;
    long seconds = syscall(SYS_time, &stored);
    CHECK(seconds == stored && seconds >= before.tv_sec && seconds <= after.tv_sec + 1, "time (%ld)", seconds);
    CHECK(syscall(SYS_time, NULL) >= seconds, "time(NULL)");
    CHECK_ERR(syscall(SYS_time, (void *)16), EFAULT);

    /* Sleeping. */
    struct timespec request = {0, 20 * 1000 * 1000}, left = {7, 7};
    clock_gettime(CLOCK_MONOTONIC, &before);
    CHECK(nanosleep(&request, &left) == 0, "nanosleep 20 ms");
    clock_gettime(CLOCK_MONOTONIC, &after);
    CHECK(nanos(&after) - nanos(&before) >= 20 * 1000 * 1000, "slept at least 20 ms (%ld ns)",
          nanos(&after) - nanos(&before));
    struct timespec bad = {0, 1000000000};
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    bad = (struct timespec){-1, 0};
    CHECK_ERR(nanosleep(&bad, NULL), EINVAL);
    CHECK_ERR(nanosleep((struct timespec *)16, NULL), EFAULT);
    CHECK_ERR(syscall(SYS_clock_nanosleep, 12345, 0, &request, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC_RAW, 0, &request, NULL), EOPNOTSUPP);
    CHECK_ERR(syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    clock_gettime(CLOCK_MONOTONIC, &before);
    struct timespec until = before;
    until.tv_nsec += 10 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == 0, "clock_nanosleep TIMER_ABSTIME");
    clock_gettime(CLOCK_MONOTONIC, &after);
    CHECK(nanos(&after) >= nanos(&until), "woke after the time");
    struct timespec past = {0, 0};
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL) == 0, "a time in the past: at once");
}

static void resolution_and_sysinfo(void) {
    struct timespec res = {7, 7};
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 10000000,
          "clock_getres(CLOCK_MONOTONIC): at most a tick (%ld ns)", res.tv_nsec);
    CHECK(clock_getres(CLOCK_REALTIME, NULL) == 0, "a null result is allowed");
    CHECK_ERR(clock_getres(99, &res), EINVAL);
    CHECK_ERR(syscall(SYS_clock_getres, CLOCK_MONOTONIC, (void *)8), EFAULT);
    struct sysinfo info;
    CHECK(sysinfo(&info) == 0, "sysinfo");
    unsigned long unit = info.mem_unit ? info.mem_unit : 1;
    CHECK(info.totalram * unit > 0 && info.freeram <= info.totalram && info.procs >= 1 && info.uptime >= 0,
          "sysinfo: RAM, free RAM within it, processes, uptime");
    CHECK_ERR(syscall(SYS_sysinfo, (void *)8), EFAULT);
}

/* ru_maxrss: the resident set's high-water mark in KiB, kept after an
   munmap; a child's, through wait4 and RUSAGE_CHILDREN. */
static void max_rss(void) {
    const size_t len = 8 << 20;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
    munmap(p, len);
    struct rusage usage;
    CHECK(getrusage(RUSAGE_SELF, &usage) == 0 && usage.ru_maxrss >= 8192,
          "ru_maxrss keeps the 8 MiB touched and unmapped (%ld KiB)", usage.ru_maxrss);
    pid_t child = fork();
    if (child == 0) {
        char *q = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (size_t i = 0; i < 2 * len; i += 4096)
            q[i] = 1;
        _exit(0);
    }
    int status;
    struct rusage theirs;
    CHECK(wait4(child, &status, 0, &theirs) == child && theirs.ru_maxrss >= 16384,
          "wait4: the child's 16 MiB (%ld KiB)", theirs.ru_maxrss);
    CHECK(getrusage(RUSAGE_CHILDREN, &usage) == 0 && usage.ru_maxrss >= 16384,
          "RUSAGE_CHILDREN: the largest child's (%ld KiB)", usage.ru_maxrss);
}

static void limits(void) {
    struct rlimit limit, saved;
    CHECK(getrlimit(RLIMIT_STACK, &saved) == 0, "getrlimit STACK");
    limit = saved;
    limit.rlim_cur = 4 << 20;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < limit.rlim_cur)
        limit.rlim_cur = limit.rlim_max;
    CHECK(syscall(SYS_setrlimit, RLIMIT_STACK, &limit) == 0, "setrlimit STACK");
    struct rlimit read_back;
    CHECK(syscall(SYS_getrlimit, RLIMIT_STACK, &read_back) == 0 && read_back.rlim_cur == limit.rlim_cur &&
              read_back.rlim_max == limit.rlim_max,
          "read back");
    CHECK(syscall(SYS_setrlimit, RLIMIT_STACK, &saved) == 0, "restore");
    struct rlimit inverted = {10, 5};
    CHECK_ERR(syscall(SYS_setrlimit, RLIMIT_STACK, &inverted), EINVAL);
    CHECK_ERR(syscall(SYS_setrlimit, 100, &saved), EINVAL);
    CHECK_ERR(syscall(SYS_setrlimit, 100, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_getrlimit, 100, &limit), EINVAL);
    struct rlimit files;
    getrlimit(RLIMIT_NOFILE, &files);
    struct rlimit too_many = {files.rlim_cur, (1 << 20) + 1};
    CHECK_ERR(syscall(SYS_setrlimit, RLIMIT_NOFILE, &too_many), EPERM);
}

static void cpus(void) {
    uint64_t mask[16];
    memset(mask, 0xff, sizeof mask);
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    CHECK(bytes >= 8 && bytes % 8 == 0, "sched_getaffinity: whole words (%ld)", bytes);
    CHECK(mask[0] != 0, "at least one CPU");
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(__builtin_popcountll(mask[0]) >= 1 && __builtin_popcountll(mask[0]) <= online, "no more than online (%ld)",
          online);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, 4, mask), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, 12, mask), EINVAL);
    CHECK_ERR(syscall(SYS_sched_getaffinity, 0, sizeof mask, (void *)16), EFAULT);
    CHECK_ERR(syscall(SYS_sched_getaffinity, -5, sizeof mask, mask), ESRCH);
    CHECK(syscall(SYS_sched_getaffinity, getpid(), sizeof mask, mask) == bytes, "by pid");

    cpu_set_t set, back;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0, "glibc sched_getaffinity");
    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && first < 0; cpu++)
        if (CPU_ISSET(cpu, &set))
            first = cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    CHECK(sched_setaffinity(0, sizeof one, &one) == 0, "pin to CPU %d", first);
    CHECK(sched_getaffinity(0, sizeof back, &back) == 0 && CPU_EQUAL(&back, &one), "the pinning reads back");
    /* A forked child inherits the mask, and runs within it. */
    pid_t child = fork();
    if (child == 0) {
        cpu_set_t inherited;
        int same = sched_getaffinity(0, sizeof inherited, &inherited) == 0 && CPU_EQUAL(&inherited, &one);
        _exit(same && sched_getcpu() == first ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a forked child inherits the pinning to CPU %d and runs there (status %#x)", first, status);
    /* Pinned, the thread runs there (every allowed CPU, up to eight). */
    int tried = 0, ran_there = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && tried < 8; cpu++) {
        if (!CPU_ISSET(cpu, &set))
            continue;
        cpu_set_t only;
        CPU_ZERO(&only);
        CPU_SET(cpu, &only);
        tried++;
        ran_there += sched_setaffinity(0, sizeof only, &only) == 0 && sched_getcpu() == cpu;
    }
    CHECK(tried > 0 && ran_there == tried, "pinned to each CPU, it runs there (%d of %d)", ran_there, tried);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "all CPUs again");
    cpu_set_t none;
    CPU_ZERO(&none);
    CHECK_ERR(sched_setaffinity(0, sizeof none, &none), EINVAL);
    CHECK_ERR(sched_setaffinity(-5, sizeof set, &set), ESRCH);
    CHECK_ERR(syscall(SYS_sched_setaffinity, 0, sizeof set, (void *)16), EFAULT);

    unsigned cpu = 12345, node = 12345;
    CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu < (unsigned)CPU_SETSIZE && node == 0, "getcpu (%u %u)",
          cpu, node);
    CHECK_ERR(syscall(SYS_getcpu, (void *)16, NULL, NULL), EFAULT);
}

static void groups(void) {
    /* 0 when the group's or session's leader lives outside this PID
     * namespace (a container), as Linux reports it. */
    pid_t group = getpgrp();
    CHECK(group >= 0, "getpgrp");
    CHECK(getpgid(0) == group && getpgid(getpid()) == group, "getpgid(0) and of the pid: the same");
    pid_t session = getsid(0);
    CHECK(session >= 0 && getsid(getpid()) == session, "getsid");
    CHECK_ERR(getpgid(-7), ESRCH);
    CHECK_ERR(getsid(-7), ESRCH);
    CHECK_ERR(setpgid(0, -1), EINVAL);

    /* A child starts its own session: it leads it and its group, cannot
     * start another or move; its own child is in the session and may make
     * a group of its own, then come back to the leader's. Each failed step
     * is one bit of the exit status. */
    pid_t child = fork();
    if (child == 0) {
        pid_t me = getpid();
        int bad = 0;
        bad |= (setsid() != me) << 0;
        bad |= (getsid(0) != me || getpgrp() != me) << 1;
        bad |= !(setsid() == -1 && errno == EPERM) << 2;
        bad |= !(setpgid(0, 0) == -1 && errno == EPERM) << 3;
        pid_t grandchild = fork();
        if (grandchild == 0) {
            int wrong = getsid(0) != me || getpgrp() != me;
            wrong |= setpgid(0, 0) != 0 || getpgrp() != getpid() || getsid(0) != me;
            wrong |= setpgid(0, me) != 0 || getpgrp() != me;
            _exit(wrong);
        }
        int status = -1;
        bad |= !(waitpid(grandchild, &status, 0) == grandchild && WIFEXITED(status) && WEXITSTATUS(status) == 0) << 4;
        _exit(bad);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "setsid in a child, and its child's groups (status %#x)", status);
}

static void signal_info(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = catcher;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    kill(getpid(), SIGUSR1);
    CHECK(got_signal == SIGUSR1 && got_code == SI_USER && got_pid == getpid(), "kill: SI_USER from this pid (%d %d)",
          got_code, got_pid);
    got_code = 0;
    syscall(SYS_tgkill, getpid(), getpid(), SIGUSR1);
    CHECK(got_code == SI_TKILL && got_pid == getpid(), "tgkill: SI_TKILL (%d)", got_code);
    got_code = 0;
    raise(SIGUSR1);
    CHECK(got_code == SI_TKILL, "raise uses tgkill");
    CHECK_ERR(syscall(SYS_tgkill, getpid(), getpid() + 100000, SIGUSR1), ESRCH);
    CHECK_ERR(syscall(SYS_tgkill, 0, getpid(), SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, 0, SIGUSR1), EINVAL);
    CHECK_ERR(syscall(SYS_tkill, getpid(), 65), EINVAL);
    CHECK_ERR(kill(-123456, SIGUSR1), ESRCH);
    CHECK(kill(0, 0) == 0, "kill(0, 0): the own group exists");

    /* rt_sigpending: the pending signals that are blocked. */
    sigset_t block, pending;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    signal(SIGUSR2, SIG_DFL);
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR2);
    CHECK(sigpending(&pending) == 0 && sigismember(&pending, SIGUSR2) && !sigismember(&pending, SIGUSR1),
          "sigpending shows the blocked SIGUSR2");
    /* Ignoring it discards it. */
    signal(SIGUSR2, SIG_IGN);
    CHECK(sigpending(&pending) == 0 && !sigismember(&pending, SIGUSR2), "SIG_IGN discards the pending one");
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    CHECK_ERR(syscall(SYS_rt_sigpending, &pending, 16), EINVAL);
    CHECK_ERR(syscall(SYS_rt_sigpending, (void *)16, 8), EFAULT);
}

int main(void) {
    resolution_and_sysinfo();
    max_rss();
    time_calls();
    limits();
    cpus();
    groups();
    signal_info();
    return finish("misc_calls");
}
