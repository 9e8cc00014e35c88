/*
 * Every system call that takes a pointer, given a bad one: NULL, an address
 * unmapped in low memory, addresses in the kernel's half of the address
 * space, a non-canonical one, and a range that crosses the top of user space. Each
 * must fail with EFAULT, and the program (and the kernel) must go on.
 *
 * The range crossing the top is given only to calls that access a fixed
 * number of bytes (at least 5): a string or a short result at the very top
 * of user space may lie wholly in the last page, which is the stack's
 * when the stack is not randomized (as on Nacre, or Linux under setarch -R).
 */
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define USER_TOP 0x00007ffffffff000UL

int main(void) {
    const unsigned long bad[] = {
        0,                        /* NULL */
        0x100000,                 /* unmapped low memory (below a non-PIE program) */
        0xffffffff80100000UL,     /* Nacre's kernel text */
        0xffff888000000000UL,     /* the direct map of RAM (Nacre's and Linux's default) */
        0xffffffff81000000UL,     /* Linux's kernel text */
        0x8000000000000000UL,     /* non-canonical */
        USER_TOP - 4,             /* 5 bytes or more from here cross the top */
    };
    int maps = open("/proc/self/maps", O_RDONLY);
    CHECK(maps >= 0, "open /proc/self/maps: %s", strerror(errno));
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)bad[i];
        printf("bad pointer %#lx\n", bad[i]);
        CHECK_ERR(syscall(SYS_write, 1, p, 16), EFAULT);
        CHECK_ERR(syscall(SYS_read, maps, p, 16), EFAULT);
        CHECK_ERR(syscall(SYS_pread64, maps, p, 16, 0), EFAULT);
        CHECK_ERR(syscall(SYS_writev, 1, p, 1), EFAULT);
        CHECK_ERR(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, p), EFAULT);
        CHECK_ERR(syscall(SYS_uname, p), EFAULT);
        CHECK_ERR(syscall(SYS_getrandom, p, 16, 0), EFAULT);
        int crossing = bad[i] == USER_TOP - 4;
        if (!crossing)
            CHECK_ERR(syscall(SYS_openat, AT_FDCWD, p, O_RDONLY), EFAULT);
        CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, "/proc/self/maps", p, 0), EFAULT);
        if (!crossing)
            CHECK_ERR(syscall(SYS_newfstatat, AT_FDCWD, p, p, 0), EFAULT);
        CHECK_ERR(syscall(SYS_fstat, 1, p), EFAULT);
        if (!crossing) {
            CHECK_ERR(syscall(SYS_readlink, "/proc/self/exe", p, 64), EFAULT);
            CHECK_ERR(syscall(SYS_getcwd, p, 64), EFAULT);
        }
        if (p == NULL)
            continue; /* for the calls below, NULL means "not given" */
        CHECK_ERR(syscall(SYS_rt_sigaction, SIGUSR1, p, NULL, 8), EFAULT);
        CHECK_ERR(syscall(SYS_rt_sigaction, SIGUSR1, NULL, p, 8), EFAULT);
        CHECK_ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, p, NULL, 8), EFAULT);
        CHECK_ERR(syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, p, 8), EFAULT);
        CHECK_ERR(syscall(SYS_prlimit64, 0, RLIMIT_STACK, NULL, p), EFAULT);
        CHECK_ERR(syscall(SYS_prlimit64, 0, RLIMIT_STACK, p, NULL), EFAULT);
    }
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)bad[i];
        CHECK_ERR(syscall(SYS_nanosleep, p, NULL), EFAULT);
        CHECK_ERR(syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, p), EFAULT);
    }
    char here[8] = "written\n";
    CHECK(syscall(SYS_write, 1, here, 8) == 8, "write of a good buffer");
    return finish("efault");
}
