/*
 * capget, capset and the capability prctls, as Linux 6.1 answers them for
 * root: the version check (EINVAL with the kernel's preferred version
 * written back, 0 for a null data pointer), EFAULT, EINVAL for a negative
 * pid, ESRCH for no such process, EPERM to set another's; the rules of
 * capset (nothing new permitted, effective within permitted); the bounding
 * set (PR_CAPBSET_READ/DROP), keep-caps, securebits and the ambient set;
 * a forked child inherits its parent's capabilities; and what dropping
 * them changes: without CAP_SYS_RAWIO a fixed mapping below mmap_min_addr
 * is EPERM, without CAP_IPC_LOCK RLIMIT_MEMLOCK binds mlock, mlock2,
 * MAP_LOCKED and mlockall.
 *
 * needs: CAP_IPC_LOCK CAP_SYS_RAWIO CAP_SETPCAP
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)
#define BIT(cap) (1ULL << (cap))

struct caps {
    uint64_t effective, permitted, inheritable;
};

static long capget_(struct __user_cap_header_struct *header, struct __user_cap_data_struct *data) {
    return syscall(SYS_capget, header, data);
}

static long capset_(struct __user_cap_header_struct *header, struct __user_cap_data_struct *data) {
    return syscall(SYS_capset, header, data);
}

static int get(int pid, struct caps *out) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, pid};
    struct __user_cap_data_struct data[2];
    if (capget_(&header, data) != 0)
        return -1;
    out->effective = data[0].effective | (uint64_t)data[1].effective << 32;
    out->permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
    out->inheritable = data[0].inheritable | (uint64_t)data[1].inheritable << 32;
    return 0;
}

static long set(struct caps c) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {
        {(uint32_t)c.effective, (uint32_t)c.permitted, (uint32_t)c.inheritable},
        {(uint32_t)(c.effective >> 32), (uint32_t)(c.permitted >> 32), (uint32_t)(c.inheritable >> 32)},
    };
    return capset_(&header, data);
}

static void versions(void) {
    struct caps mine;
    CHECK(get(0, &mine) == 0, "capget v3");
    CHECK(mine.effective == mine.permitted && mine.inheritable == 0, "root: effective = permitted, none inheritable");
    CHECK(mine.effective & BIT(CAP_IPC_LOCK) && mine.effective & BIT(CAP_SETPCAP) && mine.effective & BIT(CAP_SYS_RAWIO),
          "root holds CAP_IPC_LOCK, CAP_SETPCAP, CAP_SYS_RAWIO");
    CHECK(!(mine.effective >> (CAP_LAST_CAP + 1)), "nothing past CAP_LAST_CAP");
    struct caps again;
    CHECK(get(getpid(), &again) == 0 && again.effective == mine.effective, "pid = getpid() is the caller");

    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    CHECK(capget_(&header, NULL) == 0, "a null data pointer: 0");
    header.version = 0x12345678;
    CHECK(capget_(&header, NULL) == 0 && header.version == _LINUX_CAPABILITY_VERSION_3,
          "an unknown version, no data: 0 and the version written (%#x)", header.version);
    struct __user_cap_data_struct data[2];
    header.version = 0x12345678;
    CHECK_ERR(capget_(&header, data), EINVAL);
    CHECK(header.version == _LINUX_CAPABILITY_VERSION_3, "the preferred version written back");
    header.version = _LINUX_CAPABILITY_VERSION_2;
    CHECK(capget_(&header, data) == 0, "version 2 is accepted");

    /* Version 1: one word of each set. */
    memset(data, 0x5a, sizeof data);
    header.version = _LINUX_CAPABILITY_VERSION_1;
    CHECK(capget_(&header, data) == 0 && data[0].effective == (uint32_t)mine.effective, "version 1: the low words");
    CHECK(data[1].effective == 0x5a5a5a5a, "and only them");

    header.version = _LINUX_CAPABILITY_VERSION_3;
    CHECK_ERR(capget_(NULL, data), EFAULT);
    void *volatile bad = (void *)8;
    CHECK_ERR(capget_(&header, bad), EFAULT);
    header.pid = -1;
    CHECK_ERR(capget_(&header, data), EINVAL);
    header.pid = 0x7ffffff0;
    CHECK_ERR(capget_(&header, data), ESRCH);
    header.pid = 0;
    header.version = 0x12345678;
    CHECK_ERR(capset_(&header, data), EINVAL);
    CHECK(header.version == _LINUX_CAPABILITY_VERSION_3, "capset writes the version back too");
    header.version = _LINUX_CAPABILITY_VERSION_3;
    CHECK_ERR(capset_(&header, bad), EFAULT);
    header.pid = 0x7ffffff0;
    CHECK_ERR(capset_(&header, data), EPERM);

    /* Another process's sets. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    struct caps theirs;
    CHECK(child > 0 && get(child, &theirs) == 0 && theirs.effective == mine.effective, "the child's sets");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void bounding_and_bits(void) {
    CHECK(prctl(PR_CAPBSET_READ, CAP_IPC_LOCK, 0, 0, 0) == 1, "CAP_IPC_LOCK is in the bounding set");
    CHECK_ERR(prctl(PR_CAPBSET_READ, CAP_LAST_CAP + 1, 0, 0, 0), EINVAL);
    CHECK_ERR(prctl(PR_CAPBSET_READ, -1UL, 0, 0, 0), EINVAL);
    int valid = 1;
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        valid &= in == 0 || in == 1;
    }
    CHECK(valid, "every capability up to CAP_LAST_CAP is 0 or 1");
    CHECK(prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) == 0, "drop CAP_MKNOD from the bounding set");
    CHECK(prctl(PR_CAPBSET_READ, CAP_MKNOD, 0, 0, 0) == 0, "gone from it");
    CHECK_ERR(prctl(PR_CAPBSET_DROP, CAP_LAST_CAP + 1, 0, 0, 0), EINVAL);

    CHECK(prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0, "keep-caps off");
    CHECK_ERR(prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0), EINVAL);
    CHECK(prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0 && prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 1, "keep-caps on");
    CHECK(prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) == 1 << 4, "securebits: SECURE_KEEP_CAPS");
    CHECK_ERR(prctl(PR_SET_SECUREBITS, 1 << 12, 0, 0, 0), EPERM);
    CHECK(prctl(PR_SET_SECUREBITS, 0, 0, 0, 0) == 0 && prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) == 0, "securebits cleared");

    /* The ambient set: only what is permitted and inheritable. */
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0) == 0, "nothing ambient");
    CHECK_ERR(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0), EPERM);
    struct caps mine;
    get(0, &mine);
    mine.inheritable |= BIT(CAP_IPC_LOCK);
    CHECK(set(mine) == 0, "CAP_IPC_LOCK made inheritable");
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_IPC_LOCK, 0, 0) == 0, "then raised in the ambient set");
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0) == 1, "ambient now");
    CHECK_ERR(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0), EINVAL);
    CHECK_ERR(prctl(PR_CAP_AMBIENT, 99, CAP_IPC_LOCK, 0, 0), EINVAL);
    mine.inheritable = 0;
    CHECK(set(mine) == 0, "not inheritable any more");
    CHECK(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_IPC_LOCK, 0, 0) == 0, "which drops it from ambient");
    CHECK_ERR(prctl(0x7fff, 0, 0, 0, 0), EINVAL);
}

static void dropping(void) {
    struct caps mine;
    get(0, &mine);
    struct caps wrong = mine;
    wrong.effective |= BIT(CAP_LAST_CAP + 1);
    CHECK(set(wrong) == 0, "bits past CAP_LAST_CAP are ignored");
    wrong = mine;
    wrong.permitted &= ~BIT(CAP_SYS_RAWIO);
    CHECK_ERR(set(wrong), EPERM); /* effective not within permitted */

    mine.effective &= ~BIT(CAP_SYS_RAWIO);
    mine.permitted &= ~BIT(CAP_SYS_RAWIO);
    CHECK(set(mine) == 0, "drop CAP_SYS_RAWIO");
    struct caps now;
    CHECK(get(0, &now) == 0 && !(now.permitted & BIT(CAP_SYS_RAWIO)), "gone");
    struct caps back = mine;
    back.permitted |= BIT(CAP_SYS_RAWIO);
    CHECK_ERR(set(back), EPERM); /* nothing new permitted */

    pid_t child = fork();
    if (child == 0) {
        struct caps inherited;
        _exit(get(0, &inherited) == 0 && inherited.permitted == mine.permitted ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a forked child inherits them (%#x)", status);

    /* Without CAP_SYS_RAWIO, nothing below mmap_min_addr. */
    char text[32] = {0};
    int fd = open("/proc/sys/vm/mmap_min_addr", O_RDONLY);
    CHECK(fd >= 0 && read(fd, text, sizeof text - 1) > 0, "read mmap_min_addr");
    close(fd);
    unsigned long min_addr = strtoul(text, NULL, 10);
    if (min_addr >= PAGE) {
        void *low = (void *)(min_addr - PAGE);
        CHECK_ERR(mmap(low, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EPERM);
        CHECK_ERR(mmap(low, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EPERM);
    }

    /* Without CAP_IPC_LOCK, RLIMIT_MEMLOCK binds. */
    mine.effective &= ~BIT(CAP_IPC_LOCK);
    CHECK(set(mine) == 0, "drop CAP_IPC_LOCK from the effective set");
    struct rlimit limit = {16 * PAGE, 16 * PAGE};
    CHECK(setrlimit(RLIMIT_MEMLOCK, &limit) == 0, "RLIMIT_MEMLOCK 64 KiB");
    char *a = mmap(NULL, 32 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_ERR(mlock(a, 17 * PAGE), ENOMEM);
    CHECK(mlock(a, 8 * PAGE) == 0, "8 pages lock");
    CHECK(syscall(SYS_mlock2, a + 4 * PAGE, 12 * PAGE, MLOCK_ONFAULT) == 0, "overlapping locks count once");
    CHECK_ERR(mlock(a + 16 * PAGE, PAGE), ENOMEM);
    CHECK_ERR(mmap(NULL, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0), EAGAIN);
    CHECK_ERR(mlockall(MCL_CURRENT), ENOMEM);
    CHECK(munlock(a, 32 * PAGE) == 0, "munlock");
    limit.rlim_cur = 0;
    CHECK(setrlimit(RLIMIT_MEMLOCK, &limit) == 0, "RLIMIT_MEMLOCK 0");
    CHECK_ERR(mlock(a, PAGE), EPERM);
    munmap(a, 32 * PAGE);
    mine.effective |= BIT(CAP_IPC_LOCK);
    CHECK(set(mine) == 0, "CAP_IPC_LOCK back (still permitted)");
    CHECK(mlock(a = mmap(NULL, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), PAGE) == 0, "and a limit of 0 binds no more");

    /* With CAP_SETPCAP gone, the bounding set stays as it is. */
    mine.effective &= ~BIT(CAP_SETPCAP);
    CHECK(set(mine) == 0, "drop CAP_SETPCAP from the effective set");
    CHECK_ERR(prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0), EPERM);
    CHECK_ERR(prctl(PR_SET_SECUREBITS, 0, 0, 0, 0), EPERM);
    mine.inheritable |= BIT(CAP_SYS_RAWIO);
    CHECK_ERR(set(mine), EPERM); /* neither permitted nor inheritable before */
}

int main(void) {
    versions();
    bounding_and_bits();
    dropping();
    return finish("misc_caps");
}
