/*
 * A file mapping longer than its file: the bytes of the last page past
 * the end of the file read zero, and touching a page wholly past the end
 * raises SIGBUS with BUS_ADRERR and the address, for reads and writes,
 * whatever mprotect says; the kernel's own accesses there fail with
 * EFAULT. A mapping grown past the end by mremap behaves the same.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

static sigjmp_buf recover;
static volatile int fault_signal, fault_code;
static volatile uintptr_t fault_addr;

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)context;
    fault_signal = sig;
    fault_code = info->si_code;
    fault_addr = (uintptr_t)info->si_addr;
    siglongjmp(recover, 1);
}

static int try_read(volatile char *p) {
    fault_signal = 0;
    if (sigsetjmp(recover, 1) == 0) {
        (void)*p;
        return 0;
    }
    return fault_signal;
}

static int try_write(volatile char *p) {
    fault_signal = 0;
    if (sigsetjmp(recover, 1) == 0) {
        *p = 1;
        return 0;
    }
    return fault_signal;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);

    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0, "open");
    size_t size = st.st_size, pages = (size + PAGE - 1) / PAGE;
    char *f = mmap(NULL, (pages + 2) * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    CHECK(f != MAP_FAILED, "mmap two pages past the end: %s", strerror(errno));

    /* The last page of the file: the file's bytes, then zeros. */
    char last;
    CHECK(pread(fd, &last, 1, size - 1) == 1 && f[size - 1] == last, "the last byte of the file");
    int zeros = 1;
    for (size_t i = size; i < pages * PAGE; i++)
        zeros &= f[i] == 0;
    CHECK(zeros, "the rest of its page reads zero");

    char *past = f + pages * PAGE;
    unsigned char vec[2] = {9, 9};
    CHECK(mincore(past, 2 * PAGE, vec) == 0 && vec[0] == 0 && vec[1] == 0, "past the end: not resident");
    CHECK(try_read(past) == SIGBUS, "a read past the end: SIGBUS (%d)", fault_signal);
    CHECK(fault_code == BUS_ADRERR, "BUS_ADRERR (%d)", fault_code);
    CHECK(fault_addr == (uintptr_t)past, "si_addr is the address");
    CHECK(try_write(past + PAGE + 17) == SIGBUS && fault_addr == (uintptr_t)(past + PAGE + 17), "a write too");
    CHECK(mprotect(past, 2 * PAGE, PROT_READ) == 0, "mprotect past the end");
    CHECK(try_read(past + PAGE) == SIGBUS, "still SIGBUS");
    CHECK(mprotect(past, 2 * PAGE, PROT_NONE) == 0, "mprotect none");

    /* The kernel cannot touch these pages either. */
    CHECK(mprotect(past, 2 * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect rw");
    CHECK_ERR(read(fd, past, 16), EFAULT);
    CHECK_ERR(write(1, past, 16), EFAULT);

    /* Growing the mapping past the end by mremap: more SIGBUS pages. */
    char *g = (char *)syscall(SYS_mremap, f, (pages + 2) * PAGE, (pages + 4) * PAGE, MREMAP_MAYMOVE, 0);
    CHECK(g != MAP_FAILED, "mremap: %s", strerror(errno));
    CHECK(g[size - 1] == last, "the file's bytes moved");
    CHECK(try_read(g + (pages + 3) * PAGE) == SIGBUS, "grown part past the end: SIGBUS");
    CHECK(munmap(g, (pages + 4) * PAGE) == 0, "munmap");
    CHECK(try_read(g + (pages + 3) * PAGE) == SIGSEGV && fault_code == SEGV_MAPERR, "unmapped: SIGSEGV");

    /* A shared mapping past the end, too. */
    char *s = mmap(NULL, (pages + 1) * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED, "mmap shared");
    CHECK(s[size - 1] == last, "shared: the file's bytes");
    CHECK(try_read(s + pages * PAGE) == SIGBUS && fault_code == BUS_ADRERR, "shared: SIGBUS past the end");
    munmap(s, (pages + 1) * PAGE);

    /* An offset past the end: every page is past it. */
    char *o = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, (pages + 1) * PAGE);
    CHECK(o != MAP_FAILED, "mmap at an offset past the end");
    CHECK(try_read(o) == SIGBUS, "SIGBUS at once");
    munmap(o, PAGE);
    close(fd);
    return finish("mm_sigbus");
}
