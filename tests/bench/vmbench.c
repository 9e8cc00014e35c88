/*
 * vmbench: virtual-memory micro-benchmarks of a kernel, seen from user
 * space. One static-pie binary runs unchanged on Nacre (`run /bin/vmbench`)
 * and on Linux as /init (PID 1); `cargo xtask ubench` boots both in the
 * same QEMU and sets the figures side by side (docs/PERFORMANCE.md).
 *
 * Build: gcc -static-pie -O2 -Wall -pthread -o vmbench vmbench.c
 * Run:   vmbench [NAME...]   (only the figures named; all without a name)
 *
 * Output, one line per item:
 *   UINFO    <key> <text...>             what the program saw
 *   USAMPLES <name> <v1> ... <v5>        each timed repetition
 *   UBENCH   <name> <median> <unit>      the median of the repetitions
 *   UFAULTS  <name> <faults> <pages>     page faults of one pass (ru_minflt)
 *   UDONE
 * As Linux's PID 1 it runs the benchmarks in a child process, then powers
 * the machine off (reboot(RB_POWER_OFF)); elsewhere it runs them itself and
 * exits 0.
 *
 * Timing: clock_gettime(CLOCK_MONOTONIC) around each timed region (on Nacre
 * a system call that reads the TSC, counted from boot; on Linux under TCG a
 * system call that reads the HPET, about 0.8 us). Every timed region is at
 * least 1000 operations or one 64 MiB pass or a single call of a few
 * milliseconds, so the clock's own cost is below 0.1%.
 * Each benchmark runs once untimed (QEMU translates the paths, the host
 * backs the memory), then REPS times; the figure is the median.
 *
 * The file faults read the program's own file (/proc/self/exe), which a
 * 16 MiB constant array makes long enough: the same bytes on both kernels.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#define PG 4096UL
#define REGION (64UL << 20) /* 64 MiB */
#define NPAGES (REGION / PG)
#define HUGE2M (2UL << 20)
#define REPS 5
#define SYSCALLS 10000       /* null system calls per repetition */
#define SMALL_CALLS 2000     /* one-page mprotect/mremap calls per repetition */
#define MUNMAP1_PAGES 4096   /* one-page munmap calls per repetition */
#define MPROT_TOGGLES 16     /* 64 MiB read-only/read-write pairs per repetition */
#define SIGNAL_ROUNDS 1000   /* SIGSEGV round trips per repetition */
#define FILE_PAD (16UL << 20)

/* Makes the program's file 16 MiB longer (in .rodata, never touched through
 * the program's own mapping): the file that the file faults read. */
__attribute__((used, aligned(4096))) static const unsigned char file_pad[FILE_PAD] = { 1 };

static volatile unsigned long sink;
static int linux_init;  /* Linux's PID 1: mounts, THP off, power-off at the end */

/* ------------------------------------------------------------------ util */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what)
{
    printf("UERROR %s: %s\n", what, strerror(errno));
    fflush(stdout);
}

static void *must_map(void *addr, size_t len, int prot, int flags, int fd, off_t off, const char *what)
{
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p == MAP_FAILED) {
        fail(what);
        exit(1);
    }
    return p;
}

/* Anonymous read-write memory in 4 KiB pages (no transparent huge pages). */
static char *map_anon(size_t len, int extra)
{
    char *p = must_map(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0, "mmap anon");
    if (!(extra & MAP_POPULATE))
        madvise(p, len, MADV_NOHUGEPAGE);
    return p;
}

static void touch_write(char *p, size_t len)
{
    for (size_t o = 0; o < len; o += PG)
        ((volatile char *)p)[o] = 1;
}

static unsigned long touch_read(const char *p, size_t len)
{
    unsigned long s = 0;
    for (size_t o = 0; o < len; o += PG)
        s += ((const volatile char *)p)[o];
    return s;
}

/* A free address range of len bytes, 2 MiB aligned, plus off. */
static char *free_range(size_t len, size_t off)
{
    size_t big = len + 2 * HUGE2M;
    char *r = must_map(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "mmap reserve");
    char *a = (char *)(((uintptr_t)r + HUGE2M - 1) & ~(HUGE2M - 1)) + off;
    munmap(r, big);
    return a;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int read_text(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

static int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* ------------------------------------------------------------ the runner */

/* One timed repetition: nanoseconds over `units` operations. */
typedef struct {
    double ns, units;
} sample_t;

typedef sample_t (*bench_fn)(void);

static sample_t timed(uint64_t t0, uint64_t t1, double units)
{
    sample_t s = { (double)(t1 - t0), units };
    return s;
}

/* The figures named on the command line (all when none is). */
static char **only;
static int only_count;

static int wanted(const char *name)
{
    if (only_count == 0)
        return 1;
    for (int i = 0; i < only_count; i++)
        if (strcmp(only[i], name) == 0)
            return 1;
    return 0;
}

static void run(const char *name, const char *unit, bench_fn fn)
{
    double v[REPS];
    if (!wanted(name))
        return;
    fflush(stdout);
    (void)fn(); /* warm-up */
    for (int r = 0; r < REPS; r++) {
        sample_t s = fn();
        v[r] = s.ns / s.units;
    }
    printf("USAMPLES %s", name);
    for (int r = 0; r < REPS; r++)
        printf(" %.1f", v[r]);
    printf("\n");
    qsort(v, REPS, sizeof v[0], cmp_d);
    printf("UBENCH %s %.1f %s\n", name, v[REPS / 2], unit);
    fflush(stdout);
}

/* The page faults of one untimed pass of `pass`, in a child process: its
 * ru_minflt (getrusage is not needed: wait4 reports it), less a child's
 * that does nothing. `pages` is how many pages the pass touches. */
static long child_minflt(void (*pass)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fail("fork");
        return -1;
    }
    if (pid == 0) {
        if (pass)
            pass();
        _exit(0);
    }
    int status;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (wait4(pid, &status, 0, &ru) != pid)
        return -1;
    return ru.ru_minflt;
}

static void count_faults(const char *name, void (*pass)(void), long pages)
{
    if (!wanted(name))
        return;
    long base = child_minflt(NULL);
    long faults = child_minflt(pass);
    if (base < 0 || faults < 0)
        printf("UFAULTS %s unknown %ld\n", name, pages);
    else
        printf("UFAULTS %s %ld %ld\n", name, faults - base, pages);
    fflush(stdout);
}

/* ------------------------------------------------------- the benchmarks */

/* A null system call: getppid (the Linux harness's), and getpid. */
static sample_t b_getppid(void)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < SYSCALLS; i++)
        sink += syscall(SYS_getppid);
    return timed(t0, now_ns(), SYSCALLS);
}

static sample_t b_getpid(void)
{
    uint64_t t0 = now_ns();
    for (int i = 0; i < SYSCALLS; i++)
        sink += syscall(SYS_getpid);
    return timed(t0, now_ns(), SYSCALLS);
}

/* Anonymous private faults, 64 MiB, one byte per page. */
static sample_t anon_fault(int write)
{
    char *p = map_anon(REGION, 0);
    uint64_t t0 = now_ns();
    if (write)
        touch_write(p, REGION);
    else
        sink += touch_read(p, REGION);
    uint64_t t1 = now_ns();
    munmap(p, REGION);
    return timed(t0, t1, NPAGES);
}

static sample_t b_anon_read_fault(void) { return anon_fault(0); }
static sample_t b_anon_write_fault(void) { return anon_fault(1); }
static void p_anon_read(void) { (void)anon_fault(0); }
static void p_anon_write(void) { (void)anon_fault(1); }

/* File faults: a private read-only mapping of the program's own file, one
 * byte read per page; every page of the file is in memory (Linux: the
 * initramfs's page cache; Nacre: the initrd). */
static int exe_fd = -1;
static size_t exe_len;   /* whole pages of the file */
static int file_advice = MADV_NORMAL;

static sample_t b_file_read_fault(void)
{
    char *p = must_map(NULL, exe_len, PROT_READ, MAP_PRIVATE, exe_fd, 0, "mmap file");
    if (file_advice != MADV_NORMAL && madvise(p, exe_len, file_advice))
        fail("madvise file");
    uint64_t t0 = now_ns();
    sink += touch_read(p, exe_len);
    uint64_t t1 = now_ns();
    munmap(p, exe_len);
    return timed(t0, t1, exe_len / PG);
}

static void p_file_read(void) { (void)b_file_read_fault(); }

/* MAP_POPULATE: the time of the mmap call, per page. */
static sample_t b_populate_anon(void)
{
    uint64_t t0 = now_ns();
    char *p = map_anon(REGION, MAP_POPULATE);
    uint64_t t1 = now_ns();
    munmap(p, REGION);
    return timed(t0, t1, NPAGES);
}

static sample_t b_populate_file(void)
{
    uint64_t t0 = now_ns();
    char *p = must_map(NULL, exe_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, exe_fd, 0, "mmap file populate");
    uint64_t t1 = now_ns();
    munmap(p, exe_len);
    return timed(t0, t1, exe_len / PG);
}

static void p_populate_anon(void) { (void)b_populate_anon(); }
static void p_populate_file(void) { (void)b_populate_file(); }

/* mprotect of a populated one-page mapping between PROT_NONE guards (no
 * split, no merge), read-only and read-write in turn: ns per call. */
static sample_t b_mprotect_1page(void)
{
    char *g = must_map(NULL, 3 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "mmap guards");
    char *p = g + PG;
    mprotect(p, PG, PROT_READ | PROT_WRITE);
    touch_write(p, PG);
    uint64_t t0 = now_ns();
    for (int k = 0; k < SMALL_CALLS / 2; k++) {
        mprotect(p, PG, PROT_READ);
        mprotect(p, PG, PROT_READ | PROT_WRITE);
    }
    uint64_t t1 = now_ns();
    munmap(g, 3 * PG);
    return timed(t0, t1, SMALL_CALLS);
}

/* A sibling thread spinning on CPU 1 (it keeps the space loaded there),
 * until spin_stop. */
static volatile int spin_stop;

static void *spinner(void *arg)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    sched_setaffinity(0, sizeof set, &set);
    while (!spin_stop)
        __asm__ volatile("pause");
    return arg;
}

/* One-page mprotect as above while a sibling thread runs on CPU 1: each
 * call must reach that CPU's TLB (one IPI): ns per call. */
static sample_t b_mprotect_1page_sibling(void)
{
    pthread_t thread;
    spin_stop = 0;
    if (pthread_create(&thread, NULL, spinner, NULL))
        fail("pthread_create");
    struct timespec settle = { 0, 20 * 1000 * 1000 };
    nanosleep(&settle, NULL);
    sample_t s = b_mprotect_1page();
    spin_stop = 1;
    pthread_join(thread, NULL);
    return s;
}

/* fork of a process with 64 MiB written, the child exiting at once, and
 * the wait: ns per fork. */
static sample_t b_fork_64m(void)
{
    const int forks = 8;
    char *p = map_anon(REGION, 0);
    touch_write(p, REGION);
    uint64_t t0 = now_ns();
    for (int k = 0; k < forks; k++) {
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        if (child < 0 || waitpid(child, NULL, 0) != child)
            fail("fork_64m");
    }
    uint64_t t1 = now_ns();
    munmap(p, REGION);
    return timed(t0, t1, forks);
}

/* The first write to each page of 64 MiB shared copy-on-write with a
 * forked child (blocked on a pipe meanwhile): ns per page. */
static sample_t b_cow_fault(void)
{
    char *p = map_anon(REGION, 0);
    touch_write(p, REGION);
    int go[2];
    if (pipe(go))
        fail("pipe");
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(go[0]);
    uint64_t t0 = now_ns();
    touch_write(p, REGION);
    uint64_t t1 = now_ns();
    close(go[1]);
    waitpid(child, NULL, 0);
    munmap(p, REGION);
    return timed(t0, t1, NPAGES);
}

static void *nothing(void *arg)
{
    return arg;
}

/* pthread_create of a thread that returns at once, and pthread_join: ns
 * per thread. */
static sample_t b_thread_create_join(void)
{
    const int threads = 64;
    uint64_t t0 = now_ns();
    for (int k = 0; k < threads; k++) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, nothing, NULL) || pthread_join(thread, NULL))
            fail("pthread_create or pthread_join");
    }
    uint64_t t1 = now_ns();
    return timed(t0, t1, threads);
}

/* mprotect of a populated 64 MiB mapping, read-only and read-write in
 * turn: ns per call. */
static sample_t b_mprotect_64m(void)
{
    char *p = map_anon(REGION, 0);
    touch_write(p, REGION);
    uint64_t t0 = now_ns();
    for (int k = 0; k < MPROT_TOGGLES; k++) {
        mprotect(p, REGION, PROT_READ);
        mprotect(p, REGION, PROT_READ | PROT_WRITE);
    }
    uint64_t t1 = now_ns();
    munmap(p, REGION);
    return timed(t0, t1, 2 * MPROT_TOGGLES);
}

/* munmap of one page off the front of a populated mapping (which frees its
 * frame): ns per call. */
static sample_t b_munmap_1page(void)
{
    size_t len = MUNMAP1_PAGES * PG;
    char *g = must_map(NULL, len + 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "mmap guards");
    char *p = g + PG;
    mprotect(p, len, PROT_READ | PROT_WRITE);
    madvise(p, len, MADV_NOHUGEPAGE);
    touch_write(p, len);
    uint64_t t0 = now_ns();
    for (size_t k = 0; k < MUNMAP1_PAGES; k++)
        munmap(p + k * PG, PG);
    uint64_t t1 = now_ns();
    munmap(g, len + 2 * PG);
    return timed(t0, t1, MUNMAP1_PAGES);
}

/* munmap of a populated 64 MiB anonymous mapping (its frames freed): ns per
 * call. */
static sample_t b_munmap_64m(void)
{
    char *p = map_anon(REGION, 0);
    touch_write(p, REGION);
    uint64_t t0 = now_ns();
    munmap(p, REGION);
    uint64_t t1 = now_ns();
    return timed(t0, t1, 1);
}

/* mremap of a populated one-page mapping from A to B and back
 * (MREMAP_MAYMOVE | MREMAP_FIXED; PROT_NONE guards keep it from merging):
 * ns per call. */
static sample_t b_mremap_1page(void)
{
    char *g = must_map(NULL, 5 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0, "mmap guards");
    char *a = g + PG, *b = g + 3 * PG;
    mprotect(a, PG, PROT_READ | PROT_WRITE);
    touch_write(a, PG);
    munmap(b, PG);
    uint64_t t0 = now_ns();
    for (int k = 0; k < SMALL_CALLS / 2; k++) {
        if (mremap(a, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, b) != b
            || mremap(b, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED, a) != a) {
            fail("mremap 1 page");
            exit(1);
        }
    }
    uint64_t t1 = now_ns();
    if (a[0] != 1) {
        printf("UERROR mremap 1 page lost its contents\n");
        exit(1);
    }
    munmap(g, 5 * PG);
    return timed(t0, t1, SMALL_CALLS);
}

/* mremap moving a populated 64 MiB mapping to a free range (2 MiB aligned
 * at both ends, or the destination 4 KiB off so that every entry moves one
 * by one on Linux): ns per call. */
static sample_t mremap_64m(size_t dst_off)
{
    char *src = free_range(REGION, 0);
    src = must_map(src, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0, "mmap src");
    madvise(src, REGION, MADV_NOHUGEPAGE);
    touch_write(src, REGION);
    char *dst = free_range(REGION, dst_off);
    uint64_t t0 = now_ns();
    char *q = mremap(src, REGION, REGION, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
    uint64_t t1 = now_ns();
    if (q != dst) {
        fail("mremap 64 MiB");
        exit(1);
    }
    sink += q[REGION - PG];
    munmap(q, REGION);
    return timed(t0, t1, 1);
}

static sample_t b_mremap_64m(void) { return mremap_64m(PG); }
static sample_t b_mremap_64m_aligned(void) { return mremap_64m(0); }

/* A user SIGSEGV round trip: a write to a read-only page faults, the
 * handler makes the page writable (mprotect) and returns, the write runs
 * again; then the loop makes the page read-only again (one more mprotect).
 * ns per round. */
static char *segv_page;
static volatile unsigned long segv_count;

static void segv_handler(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)context;
    if ((char *)info->si_addr != segv_page)
        _exit(3);
    mprotect(segv_page, PG, PROT_READ | PROT_WRITE);
    segv_count++;
}

static sample_t b_sigsegv_roundtrip(void)
{
    unsigned long before = segv_count;
    uint64_t t0 = now_ns();
    for (int k = 0; k < SIGNAL_ROUNDS; k++) {
        mprotect(segv_page, PG, PROT_READ);
        ((volatile char *)segv_page)[0] = (char)k;
    }
    uint64_t t1 = now_ns();
    if (segv_count - before != SIGNAL_ROUNDS) {
        printf("UERROR sigsegv: %lu handler runs for %d rounds\n", segv_count - before, SIGNAL_ROUNDS);
        exit(1);
    }
    return timed(t0, t1, SIGNAL_ROUNDS);
}

/* ------------------------------------------------------------ setup */

/* As Linux's /init: the console, /proc (for /proc/self/exe), /sys and
 * debugfs (transparent huge pages off, fault_around_bytes). */
static void linux_init_setup(void)
{
    if (fcntl(1, F_GETFD) < 0) {
        mkdir("/dev", 0755);
        mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
        int fd = open("/dev/console", O_RDWR);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
            if (fd > 2)
                close(fd);
        }
    }
    mkdir("/proc", 0555);
    mkdir("/sys", 0555);
    if (mount("proc", "/proc", "proc", 0, NULL))
        fail("mount /proc");
    if (mount("sysfs", "/sys", "sysfs", 0, NULL))
        fail("mount /sys");
    if (mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL))
        fail("mount debugfs");
    /* Debian's default is THP "always": 64 MiB regions would get 2 MiB pages. */
    if (write_text("/sys/kernel/mm/transparent_hugepage/enabled", "never"))
        fail("THP off");
}

static void pin_to_cpu0(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (sched_setaffinity(0, sizeof set, &set))
        fail("sched_setaffinity");
}

/* The host backs guest RAM on first write, at microseconds a page: write
 * 80% of the free memory once before measuring (as the Linux harness). */
static void warm_guest_ram(void)
{
    char buf[8192];
    long free_kb = 0;
    if (read_text("/proc/meminfo", buf, sizeof buf) == 0) {
        char *line = strstr(buf, "MemFree:");
        if (line)
            free_kb = strtol(line + 8, NULL, 10);
    }
    size_t len = (size_t)(free_kb * 1024 * 0.8) & ~(PG - 1);
    if (len < REGION)
        len = 256UL << 20;
    if (len > (1UL << 30))
        len = 1UL << 30; /* run on a large host, not a guest */
    uint64_t t0 = now_ns();
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fail("mmap warm-up");
        return;
    }
    madvise(p, len, MADV_NOHUGEPAGE);
    touch_write(p, len);
    munmap(p, len);
    printf("UINFO warmup wrote %zu MiB (MemFree %ld kB) in %.1f ms\n", len >> 20, free_kb, (now_ns() - t0) / 1e6);
}

static uint64_t rdtsc(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static int benchmarks(const char *argv0, const struct utsname *un)
{
    printf("UINFO kernel %s %s %s\n", un->sysname, un->release, un->version);
    printf("UINFO pid %d%s\n", (int)getpid(), linux_init ? " (a child of Linux's init)" : "");
    printf("UINFO clock CLOCK_MONOTONIC; median of %d repetitions after one untimed\n", REPS);
    printf("UINFO online_cpus %ld\n", sysconf(_SC_NPROCESSORS_ONLN));
    pin_to_cpu0();
    printf("UINFO cpu %d (after asking for CPU 0)\n", sched_getcpu());

    /* The TSC against the clock over 200 ms: the two kernels' clocks agree
     * when both print the host's TSC rate. */
    {
        uint64_t n0 = now_ns(), c0 = rdtsc(), n1;
        while ((n1 = now_ns()) - n0 < 200000000ull)
            ;
        uint64_t c1 = rdtsc();
        printf("UINFO tsc_mhz %.1f\n", (double)(c1 - c0) * 1e3 / (double)(n1 - n0));
    }

    exe_fd = open("/proc/self/exe", O_RDONLY);
    if (exe_fd < 0)
        exe_fd = open(argv0, O_RDONLY);
    struct stat st;
    if (exe_fd < 0 || fstat(exe_fd, &st)) {
        fail("open /proc/self/exe");
        return 1;
    }
    exe_len = (size_t)st.st_size & ~(PG - 1);
    printf("UINFO file /proc/self/exe %lld bytes, %zu whole pages read per pass (file_pad %p)\n",
           (long long)st.st_size, exe_len / PG, (const void *)file_pad);

    char fa[64] = "";
    int have_fa = read_text("/sys/kernel/debug/fault_around_bytes", fa, sizeof fa) == 0;
    printf("UINFO fault_around_bytes %s\n", have_fa ? fa : "(none: no debugfs knob)");
    if (linux_init) {
        char thp[128] = "";
        read_text("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
        printf("UINFO thp %s\n", thp);
    }
    warm_guest_ram();

    run("syscall_getppid", "ns/call", b_getppid);
    run("syscall_getpid", "ns/call", b_getpid);

    run("anon_read_fault", "ns/page", b_anon_read_fault);
    count_faults("anon_read_fault", p_anon_read, NPAGES);
    run("anon_write_fault", "ns/page", b_anon_write_fault);
    count_faults("anon_write_fault", p_anon_write, NPAGES);

    /* File faults as each kernel does them by default, with MADV_RANDOM, and
     * with fault-around off where the kernel has the knob (Linux 6.1:
     * debugfs fault_around_bytes; MADV_RANDOM does not turn it off there). */
    run("file_read_fault", "ns/page", b_file_read_fault);
    count_faults("file_read_fault", p_file_read, exe_len / PG);
    file_advice = MADV_RANDOM;
    run("file_read_fault_madv_random", "ns/page", b_file_read_fault);
    count_faults("file_read_fault_madv_random", p_file_read, exe_len / PG);
    file_advice = MADV_NORMAL;
    int fa_off = have_fa && write_text("/sys/kernel/debug/fault_around_bytes", "4096") == 0;
    printf("UINFO file_read_fault_nofa %s\n",
           fa_off ? "fault_around_bytes=4096" : "no knob: the kernel's default, as file_read_fault");
    run("file_read_fault_nofa", "ns/page", b_file_read_fault);
    count_faults("file_read_fault_nofa", p_file_read, exe_len / PG);
    if (fa_off)
        write_text("/sys/kernel/debug/fault_around_bytes", fa);

    run("populate_anon", "ns/page", b_populate_anon);
    count_faults("populate_anon", p_populate_anon, NPAGES);
    run("populate_file", "ns/page", b_populate_file);
    count_faults("populate_file", p_populate_file, exe_len / PG);

    run("mprotect_1page", "ns/call", b_mprotect_1page);
    run("mprotect_1page_sibling", "ns/call", b_mprotect_1page_sibling);
    run("mprotect_64m", "ns/call", b_mprotect_64m);
    run("munmap_1page", "ns/call", b_munmap_1page);
    run("munmap_64m", "ns/call", b_munmap_64m);
    run("mremap_1page", "ns/call", b_mremap_1page);
    run("mremap_64m", "ns/call", b_mremap_64m);
    run("mremap_64m_aligned", "ns/call", b_mremap_64m_aligned);

    segv_page = map_anon(PG, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL)) {
        fail("sigaction");
        return 1;
    }
    run("sigsegv_roundtrip", "ns/round", b_sigsegv_roundtrip);
    run("fork_64m", "ns/fork", b_fork_64m);
    run("cow_fault", "ns/page", b_cow_fault);
    run("thread_create_join", "ns/thread", b_thread_create_join);
    printf("UINFO cpu %d at the end\n", sched_getcpu());

    return 0;
}

int main(int argc, char **argv)
{
    only = argv + 1;
    only_count = argc > 1 ? argc - 1 : 0;
    struct utsname un;
    uname(&un);
    linux_init = getpid() == 1 && strcmp(un.sysname, "Linux") == 0;
    if (!linux_init) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (benchmarks(argv[0], &un))
            return 1;
        printf("UDONE\n");
        return 0;
    }
    /* Linux's init: the benchmarks run in a child, because Linux logs every
     * SIGSEGV of init (unhandled_signal() is true for it) on the console at
     * KERN_EMERG, which would be timed with the round trips. */
    linux_init_setup();
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("\n"); /* the console's line may hold the firmware's last text */
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        _exit(benchmarks(argv[0], &un));
    int status = 0;
    if (child < 0 || waitpid(child, &status, 0) != child)
        fail("fork or wait");
    else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        printf("UDONE\n");
    else
        printf("UERROR the benchmarks ended with status %#x\n", status);
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}
