/*
 * The mmap flags beyond the basic ones: MAP_POPULATE (every page resident
 * at once), MAP_NORESERVE and MAP_STACK (accepted), MAP_GROWSDOWN (a
 * mapping that grows down when the page below it is touched), PROT_NONE,
 * hints; mprotect with PROT_GROWSDOWN (the change reaches down to the
 * start of the grow-down mapping) and mprotect's order of checks and
 * progress up to a hole; RLIMIT_AS for mmap and brk, RLIMIT_STACK for a
 * grow-down mapping; MAP_SHARED anonymous memory shared with a forked child;
 * a read of a file mapping whose file is in memory maps its neighbours too
 * (fault-around: far fewer faults than pages); a mapping that may be
 * written but not read (PROT_WRITE alone) shows "-w-" in /proc/self/maps and
 * refuses MADV_POPULATE_READ (EINVAL), as Linux's mapping without VM_READ.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

static sigjmp_buf recover;
static volatile int fault_signal, fault_code;

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)context;
    fault_signal = sig;
    fault_code = info->si_code;
    siglongjmp(recover, 1);
}

static int try_write(volatile char *p) {
    fault_signal = 0;
    if (sigsetjmp(recover, 1) == 0) {
        *p = 1;
        return 0;
    }
    return fault_signal;
}

static int try_read(volatile char *p) {
    fault_signal = 0;
    if (sigsetjmp(recover, 1) == 0) {
        (void)*p;
        return 0;
    }
    return fault_signal;
}

static int resident(void *p, size_t pages) {
    unsigned char vec[512];
    if (pages > sizeof vec || mincore(p, pages * PAGE, vec) != 0)
        return -1;
    int count = 0;
    for (size_t i = 0; i < pages; i++)
        count += vec[i] & 1;
    return count;
}

/* The VmSize line of /proc/self/status, in bytes. */
static unsigned long vm_size(void) {
    static char text[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = 0;
    char *line = strstr(text, "VmSize:");
    return line ? strtoul(line + 7, NULL, 10) * 1024 : 0;
}

static void flags(void) {
    char *a = mmap(NULL, 32 * PAGE, RW, ANON | MAP_POPULATE, -1, 0);
    CHECK(a != MAP_FAILED, "MAP_POPULATE");
    CHECK(resident(a, 32) == 32, "every page resident at once");
    CHECK(a[31 * PAGE] == 0, "and zero");
    munmap(a, 32 * PAGE);

    char *n = mmap(NULL, 4 * PAGE, RW, ANON | MAP_NORESERVE, -1, 0);
    CHECK(n != MAP_FAILED && resident(n, 4) == 0, "MAP_NORESERVE");
    n[0] = 1;
    munmap(n, 4 * PAGE);
    char *s = mmap(NULL, 4 * PAGE, RW, ANON | MAP_STACK, -1, 0);
    CHECK(s != MAP_FAILED, "MAP_STACK");
    s[3 * PAGE] = 1;
    munmap(s, 4 * PAGE);

    /* MAP_POPULATE of PROT_NONE memory populates nothing, and fails nothing. */
    char *none = mmap(NULL, 4 * PAGE, PROT_NONE, ANON | MAP_POPULATE, -1, 0);
    CHECK(none != MAP_FAILED && resident(none, 4) == 0, "PROT_NONE with MAP_POPULATE");
    CHECK(try_read(none) == SIGSEGV && fault_code == SEGV_ACCERR, "PROT_NONE: SEGV_ACCERR");
    CHECK(mprotect(none, 4 * PAGE, PROT_READ) == 0 && none[0] == 0, "readable after mprotect");
    munmap(none, 4 * PAGE);

    /* A free hint is taken; a busy one is not. */
    char *spot = mmap(NULL, 8 * PAGE, RW, ANON, -1, 0);
    munmap(spot, 8 * PAGE);
    char *hinted = mmap(spot + 2 * PAGE, PAGE, RW, ANON, -1, 0);
    CHECK(hinted == spot + 2 * PAGE, "free hint taken");
    char *elsewhere = mmap(spot + 2 * PAGE, PAGE, RW, ANON, -1, 0);
    CHECK(elsewhere != MAP_FAILED && elsewhere != hinted, "busy hint: elsewhere");
    hinted[0] = 4;
    CHECK(hinted[0] == 4 && elsewhere[0] == 0, "two different mappings");
    munmap(hinted, PAGE);
    munmap(elsewhere, PAGE);

    /* A file mapping cannot grow down; nor can shared memory. */
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, fd, 0), EINVAL);
    close(fd);
    CHECK_ERR(mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0), EINVAL);
    /* Only a file mapping can ask for its flags to be validated. */
    CHECK_ERR(mmap(NULL, PAGE, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    fd = open("/proc/self/exe", O_RDONLY);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | 0x800000, fd, 0), EOPNOTSUPP);
    char *validated = mmap(NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | MAP_POPULATE, fd, 0);
    CHECK(validated != MAP_FAILED && memcmp(validated, "\x7f" "ELF", 4) == 0, "MAP_SHARED_VALIDATE of a file");
    munmap(validated, PAGE);
    close(fd);
}

static void shared(void) {
    /* MAP_SHARED anonymous memory is one piece of memory for a parent and its child. */
    volatile char *s = mmap(NULL, 2 * PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(s != MAP_FAILED, "MAP_SHARED | MAP_ANONYMOUS");
    char *p = mmap(NULL, PAGE, RW, ANON, -1, 0);
    s[0] = 1;
    p[0] = 1;
    pid_t child = fork();
    if (child == 0) {
        s[0] = 2;
        s[PAGE + 5] = 3;
        p[0] = 2;
        _exit(0);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && status == 0, "fork and wait");
    CHECK(s[0] == 2 && s[PAGE + 5] == 3, "the child's writes to shared memory are seen");
    CHECK(p[0] == 1, "its writes to private memory are not");
    munmap((void *)s, 2 * PAGE);
    munmap(p, PAGE);
}

static void grows_down(void) {
    char *g = mmap(NULL, 4 * PAGE, RW, ANON | MAP_GROWSDOWN, -1, 0);
    CHECK(g != MAP_FAILED, "MAP_GROWSDOWN: %s", strerror(errno));
    g[0] = 1;
    CHECK(try_write(g - PAGE) == 0, "the page below grows the mapping");
    CHECK(g[-PAGE] == 1 && g[0] == 1, "and is memory");
    CHECK(try_write(g - 3 * PAGE) == 0, "further down, near enough");
    CHECK(resident(g - 3 * PAGE, 7) >= 3, "grown: %d", resident(g - 3 * PAGE, 7));

    /* PROT_GROWSDOWN: the change reaches down to the mapping's start. */
    CHECK(mprotect(g + PAGE, PAGE, PROT_READ | PROT_GROWSDOWN) == 0, "mprotect PROT_GROWSDOWN: %s", strerror(errno));
    CHECK(try_write(g - 3 * PAGE) == SIGSEGV && fault_code == SEGV_ACCERR, "the bottom is read-only now");
    CHECK(try_write(g + PAGE) == SIGSEGV, "up to the page named");
    CHECK(try_write(g + 2 * PAGE) == 0, "the page above is as it was");
    CHECK(g[-PAGE] == 1, "and the contents stay");
    CHECK_ERR(mprotect(g + 2 * PAGE, PAGE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), EINVAL);
    munmap(g - 3 * PAGE, 7 * PAGE);

    char *plain = mmap(NULL, 2 * PAGE, RW, ANON, -1, 0);
    CHECK_ERR(mprotect(plain + PAGE, PAGE, PROT_READ | PROT_GROWSDOWN), EINVAL);
    CHECK_ERR(mprotect(plain, PAGE, PROT_READ | PROT_GROWSUP), EINVAL);
    CHECK(try_write(plain) == 0, "refused: nothing changed");
    munmap(plain, 2 * PAGE);
}

static void mprotect_order(void) {
    char *a = mmap(NULL, 8 * PAGE, RW, ANON, -1, 0);
    CHECK(mprotect(a, 0, 0x1234) == 0, "nothing to protect: the rights are not looked at");
    CHECK_ERR(mprotect(a + 1, 0, PROT_READ), EINVAL);
    CHECK_ERR(mprotect(a, (size_t)-PAGE, 0x1234), ENOMEM); /* wraps, before the rights */
    CHECK_ERR(mprotect(a, PAGE, 0x1234), EINVAL);
    /* Up to a hole, the change is made; then ENOMEM. */
    CHECK(munmap(a + 4 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(mprotect(a, 8 * PAGE, PROT_READ), ENOMEM);
    CHECK(try_write(a + 3 * PAGE) == SIGSEGV, "the part before the hole changed");
    CHECK(try_write(a + 5 * PAGE) == 0, "the part after it did not");
    CHECK_ERR(mprotect(a + 4 * PAGE, PAGE, PROT_READ), ENOMEM);
    munmap(a, 8 * PAGE);
}

static void address_space_limit(void) {
    struct rlimit old, small;
    CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
    char *keep = mmap(NULL, 8 * PAGE, RW, ANON, -1, 0);
    CHECK(munmap(keep + 4 * PAGE, 4 * PAGE) == 0, "room above");
    unsigned long size = vm_size();
    CHECK(size > 0, "VmSize");
    small = old;
    small.rlim_cur = size + 8 * PAGE;
    CHECK(setrlimit(RLIMIT_AS, &small) == 0, "setrlimit");
    CHECK_ERR(mmap(NULL, 9 * PAGE, RW, ANON, -1, 0), ENOMEM);
    char *a = mmap(NULL, 8 * PAGE, RW, ANON, -1, 0);
    CHECK(a != MAP_FAILED, "up to the limit: %s", strerror(errno));
    CHECK_ERR(mmap(NULL, PAGE, RW, ANON, -1, 0), ENOMEM);
    char *over = mmap(keep, 4 * PAGE, PROT_READ, ANON | MAP_FIXED, -1, 0);
    CHECK(over == keep, "MAP_FIXED over a mapping adds nothing");
    CHECK_ERR(mmap(keep + 2 * PAGE, 4 * PAGE, PROT_READ, ANON | MAP_FIXED, -1, 0), ENOMEM);
    CHECK(try_read(keep + 3 * PAGE) == 0, "the refused MAP_FIXED unmapped nothing");
    CHECK(try_read(keep + 4 * PAGE) == SIGSEGV, "and mapped nothing");
    void *old_break = sbrk(0);
    CHECK(sbrk(64 * PAGE) == (void *)-1 && errno == ENOMEM, "brk refused");
    CHECK(sbrk(0) == old_break, "the break stays");
    CHECK(munmap(a, 8 * PAGE) == 0, "munmap");
    CHECK(sbrk(4 * PAGE) == old_break, "brk within the limit");
    CHECK(sbrk(-4 * (long)PAGE) != (void *)-1, "brk back");
    CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restore");
    munmap(keep, 4 * PAGE);
}

static void stack_limit(void) {
    struct rlimit old, small;
    char *g = mmap(NULL, 2 * PAGE, RW, ANON | MAP_GROWSDOWN, -1, 0);
    CHECK(g != MAP_FAILED, "MAP_GROWSDOWN");
    CHECK(getrlimit(RLIMIT_STACK, &old) == 0, "getrlimit");
    small = old;
    small.rlim_cur = 4 * PAGE;
    CHECK(setrlimit(RLIMIT_STACK, &small) == 0, "setrlimit stack");
    CHECK(try_write(g - 2 * PAGE) == 0, "grows to the limit");
    CHECK(try_write(g - 3 * PAGE) == SIGSEGV && fault_code == SEGV_MAPERR, "not past it");
    CHECK(setrlimit(RLIMIT_STACK, &old) == 0, "restore");
    CHECK(try_write(g - 3 * PAGE) == 0, "grows again once the limit is raised");
    munmap(g - 3 * PAGE, 5 * PAGE);
}

static void fault_around(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0, "open the program's file");
    long pages = st.st_size / (long)PAGE;
    if (pages > 64)
        pages = 64;
    static char buf[PAGE];
    long read_ok = 0;
    for (long i = 0; i < pages; i++)
        read_ok += pread(fd, buf, PAGE, i * PAGE) == (ssize_t)PAGE;
    CHECK(read_ok == pages, "read its first %ld pages first", pages);
    char *f = mmap(NULL, pages * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "map %ld pages of it", pages);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    volatile char sum = 0;
    for (long i = 0; i < pages; i++)
        sum += f[i * PAGE];
    getrusage(RUSAGE_SELF, &after);
    long faults = after.ru_minflt - before.ru_minflt;
    CHECK(pages >= 32 && faults < pages / 2, "reading %ld pages took %ld faults", pages, faults);
    munmap(f, pages * PAGE);
    close(fd);
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

/* The rights column ("rw-p") of the /proc/self/maps line starting at p. */
static void rights_of(void *p, char out[5]) {
    char line[512];
    strcpy(out, "????");
    char *space = maps_line(p, line, sizeof line) ? strchr(line, ' ') : NULL;
    if (space)
        memcpy(out, space + 1, 4);
}

static void write_only(void) {
    char rights[5] = {0};
    char *w = mmap(NULL, 2 * PAGE, PROT_WRITE, ANON, -1, 0);
    CHECK(w != MAP_FAILED, "a PROT_WRITE mapping");
    rights_of(w, rights);
    CHECK(!strcmp(rights, "-w-p"), "maps shows it write-only: %s", rights);
    CHECK_ERR(madvise(w, 2 * PAGE, MADV_POPULATE_READ), EINVAL);
    CHECK(madvise(w, 2 * PAGE, MADV_POPULATE_WRITE) == 0, "MADV_POPULATE_WRITE: %s", strerror(errno));
    w[0] = 1;
    CHECK(mprotect(w, PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect its first page readable");
    rights_of(w, rights);
    CHECK(!strcmp(rights, "rw-p"), "then that part is rw-p: %s", rights);
    rights_of(w + PAGE, rights);
    CHECK(!strcmp(rights, "-w-p"), "and the rest still -w-p: %s", rights);
    CHECK(madvise(w, PAGE, MADV_POPULATE_READ) == 0, "MADV_POPULATE_READ of the readable part");
    char *x = mmap(NULL, PAGE, PROT_EXEC, ANON, -1, 0);
    rights_of(x, rights);
    CHECK(x != MAP_FAILED && !strcmp(rights, "--xp"), "a PROT_EXEC mapping shows --xp: %s", rights);
    munmap(x, PAGE);
    munmap(w, 2 * PAGE);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    flags();
    grows_down();
    mprotect_order();
    address_space_limit();
    stack_limit();
    fault_around();
    write_only();
    shared(); /* last: it forks, and the rest need not run on copy-on-write pages */
    return finish("mm_mmap");
}
