/*
 * The memory system calls: mmap (anonymous, fixed, no-replace, hints, file
 * private), munmap, mprotect, brk, each with its errors, and what the
 * program then sees: zero pages, its own writes, a fault where nothing is
 * mapped (SEGV_MAPERR) or where the access is not allowed (SEGV_ACCERR).
 */
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

static sigjmp_buf recover;
static volatile int fault_code;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    fault_code = info->si_code;
    fault_addr = (uintptr_t)info->si_addr;
    siglongjmp(recover, 1);
}

/* 0 if the access went through, else the si_code of the SIGSEGV. */
static int try_write(volatile char *p) {
    fault_code = 0;
    if (sigsetjmp(recover, 1) == 0) {
        *p = 1;
        return 0;
    }
    return fault_code;
}

static int try_read(volatile char *p) {
    fault_code = 0;
    if (sigsetjmp(recover, 1) == 0) {
        (void)*p;
        return 0;
    }
    return fault_code;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0, "sigaction");

    /* Anonymous memory reads zero, keeps writes. */
    char *a = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED, "mmap anonymous: %s", strerror(errno));
    CHECK(((uintptr_t)a & (PAGE - 1)) == 0, "mmap result page aligned");
    int zero = 1;
    for (unsigned long i = 0; i < 16 * PAGE; i += 512)
        zero &= a[i] == 0;
    CHECK(zero, "fresh anonymous pages read zero");
    for (unsigned long i = 0; i < 16 * PAGE; i += PAGE)
        a[i] = (char)(i / PAGE + 1);
    CHECK(a[5 * PAGE] == 6 && a[15 * PAGE] == 16, "writes stay");

    /* munmap part of it: that part faults with SEGV_MAPERR, the rest stays. */
    CHECK(munmap(a + 4 * PAGE, 4 * PAGE) == 0, "munmap middle");
    CHECK(try_read(a + 5 * PAGE) == SEGV_MAPERR, "read of an unmapped page: SEGV_MAPERR");
    CHECK(fault_addr == (uintptr_t)(a + 5 * PAGE), "si_addr is the address");
    CHECK(a[3 * PAGE] == 4 && a[8 * PAGE] == 9, "neighbours survive");

    /* mprotect read-only: writes fault with SEGV_ACCERR, reads work. */
    CHECK(mprotect(a, 4 * PAGE, PROT_READ) == 0, "mprotect read-only");
    CHECK(try_write(a + PAGE) == SEGV_ACCERR, "write to a read-only page: SEGV_ACCERR");
    CHECK(try_read(a + PAGE) == 0 && a[PAGE] == 2, "read-only page still reads");
    CHECK(mprotect(a, 4 * PAGE, PROT_NONE) == 0, "mprotect none");
    CHECK(try_read(a) == SEGV_ACCERR, "read of a PROT_NONE page: SEGV_ACCERR");
    CHECK(mprotect(a, 4 * PAGE, PROT_READ | PROT_WRITE) == 0, "mprotect back to rw");
    CHECK(a[0] == 1, "contents survive protection changes");

    /* mprotect errors. */
    CHECK_ERR(mprotect(a + 1, PAGE, PROT_READ), EINVAL);
    CHECK_ERR(mprotect(a, PAGE, 0x40), EINVAL);
    CHECK_ERR(mprotect(a + 4 * PAGE, PAGE, PROT_READ), ENOMEM);
    CHECK_ERR(mprotect(a, 6 * PAGE, PROT_READ), ENOMEM); /* runs into the hole */
    CHECK(mprotect(a, 0, PROT_READ) == 0, "mprotect of nothing");

    /* mmap errors, in Linux's order. */
    CHECK_ERR(mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1), EINVAL);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL); /* no type */
    CHECK_ERR(mmap(NULL, (size_t)-1, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), ENOMEM);
    CHECK_ERR(mmap((void *)(a + 1), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EINVAL);

    /* MAP_FIXED replaces; MAP_FIXED_NOREPLACE refuses. */
    char *fixed = mmap(a + 8 * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(fixed == a + 8 * PAGE, "MAP_FIXED at the address");
    CHECK(fixed[0] == 0, "MAP_FIXED replaced the old page (zero now)");
    CHECK_ERR(mmap(a + 9 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    char *free_slot = mmap(a + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(free_slot == a + 4 * PAGE, "MAP_FIXED_NOREPLACE into the hole");

    /* munmap errors; unmapping nothing is fine. */
    CHECK_ERR(munmap(a + 1, PAGE), EINVAL);
    CHECK_ERR(munmap(a, 0), EINVAL);
    CHECK(munmap(a, 16 * PAGE) == 0, "munmap all (holes included)");
    CHECK(munmap(a, 16 * PAGE) == 0, "munmap again: nothing there, no error");
    CHECK(try_read(a) == SEGV_MAPERR, "gone");

    /* A private file mapping: the file's bytes, writes stay private. */
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0, "open /proc/self/exe: %s", strerror(errno));
    char *elf = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(elf != MAP_FAILED, "mmap file private: %s", strerror(errno));
    if (elf == MAP_FAILED)
        return finish("memory");
    CHECK(memcmp(elf, "\x7f" "ELF", 4) == 0, "the file's first bytes");
    elf[0] = 'X';
    char first;
    CHECK(pread(fd, &first, 1, 0) == 1 && first == 0x7f, "a private write does not reach the file");
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), EACCES);
    close(fd);

    /* brk: grows with zeroed memory, shrinks, refuses below the start. */
    char *start = sbrk(0);
    CHECK(start != (char *)-1, "sbrk(0)");
    char *top = (char *)syscall(SYS_brk, start + 5 * PAGE);
    CHECK(top == start + 5 * PAGE, "brk grows: %p", top);
    start[4 * PAGE] = 7;
    CHECK(start[4 * PAGE] == 7 && start[PAGE] == 0, "heap memory works");
    top = (char *)syscall(SYS_brk, start + PAGE);
    CHECK(top == start + PAGE, "brk shrinks");
    CHECK(try_read(start + 4 * PAGE) == SEGV_MAPERR, "shrunk heap is gone");
    top = (char *)syscall(SYS_brk, (char *)0x1000);
    CHECK(top == start + PAGE, "brk below the start keeps the break");

    return finish("memory");
}
