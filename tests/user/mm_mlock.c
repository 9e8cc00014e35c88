/*
 * mlock, mlock2 (MLOCK_ONFAULT), munlock, mlockall (MCL_CURRENT,
 * MCL_FUTURE, MCL_ONFAULT), munlockall and MAP_LOCKED: locked pages are
 * resident (mincore), locked memory may still be unmapped, a forked child
 * inherits no locks, and the errors in Linux's order. The program runs as
 * root, whom Linux exempts from RLIMIT_MEMLOCK (CAP_IPC_LOCK): a limit of 0
 * stops nothing.
 *
 * needs: CAP_IPC_LOCK
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

static char *map(size_t pages, int prot) {
    return mmap(NULL, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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

static long mlock2_(void *p, size_t len, int flags) {
    return syscall(SYS_mlock2, p, len, flags);
}

static void lock_and_unlock(void) {
    char *a = map(16, RW);
    CHECK(resident(a, 16) == 0, "nothing resident");
    CHECK(mlock(a + PAGE, 4 * PAGE) == 0, "mlock: %s", strerror(errno));
    CHECK(resident(a, 16) == 4, "locked pages are resident: %d", resident(a, 16));
    CHECK(a[PAGE] == 0, "and read zero");
    /* An unaligned start locks from its page, the length rounded up. */
    CHECK(mlock(a + 6 * PAGE + 100, PAGE) == 0, "mlock unaligned");
    CHECK(resident(a + 6 * PAGE, 2) == 2, "both pages the range touches");
    CHECK(munlock(a, 16 * PAGE) == 0, "munlock");
    CHECK(resident(a, 16) == 6, "unlocking keeps the pages");
    CHECK(munlock(a, 16 * PAGE) == 0, "munlock again");

    /* MLOCK_ONFAULT: locked, but not faulted in now. */
    CHECK(mlock2_(a + 8 * PAGE, 4 * PAGE, MLOCK_ONFAULT) == 0, "mlock2 ONFAULT");
    CHECK(resident(a + 8 * PAGE, 4) == 0, "nothing faulted in");
    a[8 * PAGE] = 1;
    CHECK(resident(a + 8 * PAGE, 4) == 1, "touched page resident");
    CHECK(mlock2_(a + 12 * PAGE, PAGE, 0) == 0, "mlock2 without flags");
    CHECK(resident(a + 12 * PAGE, 1) == 1, "populated");
    CHECK_ERR(mlock2_(a, PAGE, 2), EINVAL);
    CHECK_ERR(mlock2_(a, PAGE, -1), EINVAL);

    /* Locked memory may be unmapped, remapped and protected. */
    CHECK(mlock(a, 16 * PAGE) == 0, "mlock all");
    CHECK(mprotect(a, PAGE, PROT_READ) == 0, "mprotect locked");
    CHECK(munmap(a + 2 * PAGE, 2 * PAGE) == 0, "munmap part of locked memory");
    char *fixed = mmap(a + 4 * PAGE, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(fixed == a + 4 * PAGE, "MAP_FIXED over locked memory");
    CHECK(munmap(a, 16 * PAGE) == 0, "munmap locked memory");

    /* Holes: ENOMEM, the part before the hole locked. */
    char *b = map(4, RW);
    CHECK(munmap(b + 2 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(mlock(b, 4 * PAGE), ENOMEM);
    CHECK(resident(b, 2) == 0, "the error comes before anything is faulted in");
    CHECK_ERR(madvise(b, PAGE, MADV_DONTNEED), EINVAL); /* but locked up to the hole */
    CHECK(munlock(b, 2 * PAGE) == 0, "munlock up to the hole");
    CHECK_ERR(mlock(b + 2 * PAGE, PAGE), ENOMEM);
    CHECK_ERR(munlock(b, 4 * PAGE), ENOMEM);
    CHECK(mlock(b, 0) == 0 && munlock(b, 0) == 0, "nothing to lock");
    CHECK_ERR(mlock(b, (size_t)-PAGE), EINVAL); /* wraps */
    munmap(b, 4 * PAGE);

    /* Pages that cannot be read fail to fault in: ENOMEM, as Linux. */
    char *none = map(2, PROT_NONE);
    CHECK_ERR(mlock(none, 2 * PAGE), ENOMEM);
    CHECK(mlock2_(none, 2 * PAGE, MLOCK_ONFAULT) == 0, "ONFAULT over PROT_NONE faults nothing in");
    munmap(none, 2 * PAGE);
}

static void past_the_end_of_a_file(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0, "open");
    size_t pages = (st.st_size + PAGE - 1) / PAGE;
    char *f = mmap(NULL, (pages + 1) * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "mmap");
    CHECK(mlock(f + (pages - 2) * PAGE, 2 * PAGE) == 0, "mlock file pages");
    CHECK_ERR(mlock(f + (pages - 1) * PAGE, 2 * PAGE), ENOMEM);
    munmap(f, (pages + 1) * PAGE);
    close(fd);
}

static void map_locked(void) {
    char *a = mmap(NULL, 8 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    CHECK(a != MAP_FAILED, "MAP_LOCKED");
    CHECK(resident(a, 8) == 8, "MAP_LOCKED pages are resident");
    CHECK_ERR(madvise(a, PAGE, MADV_DONTNEED), EINVAL);
    /* A locked mapping that grows is populated in its new part too. */
    char *b = (char *)syscall(SYS_mremap, a, 8 * PAGE, 16 * PAGE, MREMAP_MAYMOVE, 0);
    CHECK(b != MAP_FAILED && resident(b, 16) == 16, "grown locked mapping resident");
    CHECK(munmap(b, 16 * PAGE) == 0, "munmap");
}

static void lock_all(void) {
    CHECK_ERR(mlockall(0), EINVAL);
    CHECK_ERR(mlockall(MCL_ONFAULT), EINVAL);
    CHECK_ERR(mlockall(8 | MCL_CURRENT), EINVAL);

    char *a = map(8, RW);
    CHECK(mlockall(MCL_CURRENT) == 0, "mlockall current: %s", strerror(errno));
    CHECK(resident(a, 8) == 8, "every mapping resident");
    char *later = map(8, RW);
    CHECK(resident(later, 8) == 0, "later mappings are not locked");
    CHECK(munlockall() == 0, "munlockall");
    CHECK(madvise(a, 8 * PAGE, MADV_DONTNEED) == 0, "unlocked again");

    CHECK(mlockall(MCL_FUTURE) == 0, "mlockall future");
    char *future = map(8, RW);
    CHECK(resident(future, 8) == 8, "a new mapping is locked and resident");
    CHECK_ERR(madvise(future, PAGE, MADV_DONTNEED), EINVAL);
    CHECK(resident(later, 8) == 0, "older mappings stay as they were");
    char *start = sbrk(0);
    CHECK(sbrk(4 * PAGE) == start, "brk grows");
    char *heap = (char *)(((unsigned long)start + PAGE - 1) & ~(PAGE - 1));
    CHECK(resident(heap, 3) == 3, "the new heap is locked and resident");
    CHECK(sbrk(-4 * (long)PAGE) != (void *)-1, "brk shrinks");

    CHECK(mlockall(MCL_FUTURE | MCL_ONFAULT) == 0, "future on fault");
    char *onfault = map(8, RW);
    CHECK(resident(onfault, 8) == 0, "locked on fault: nothing yet");
    CHECK_ERR(madvise(onfault, PAGE, MADV_DONTNEED), EINVAL);
    CHECK(munlockall() == 0, "munlockall");
    char *free_again = map(8, RW);
    CHECK(resident(free_again, 8) == 0 && madvise(free_again, PAGE, MADV_DONTNEED) == 0, "no longer locked");
    CHECK(madvise(onfault, PAGE, MADV_DONTNEED) == 0, "munlockall unlocked everything");
    munmap(a, 8 * PAGE);
    munmap(later, 8 * PAGE);
    munmap(future, 8 * PAGE);
    munmap(onfault, 8 * PAGE);
    munmap(free_again, 8 * PAGE);
}

static void not_inherited(void) {
    /* A forked child inherits no locks: it may drop the pages. */
    char *a = map(2, RW);
    CHECK(mlock(a, 2 * PAGE) == 0, "mlock");
    a[0] = 5;
    pid_t child = fork();
    if (child == 0)
        _exit(madvise(a, 2 * PAGE, MADV_DONTNEED) == 0 && a[0] == 0 ? 0 : 1);
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's pages were not locked (%#x)", status);
    CHECK(a[0] == 5, "the parent's page stays");
    CHECK_ERR(madvise(a, 2 * PAGE, MADV_DONTNEED), EINVAL);
    munmap(a, 2 * PAGE);
}

static void limit(void) {
    struct rlimit old, none;
    CHECK(getrlimit(RLIMIT_MEMLOCK, &old) == 0, "getrlimit");
    none = old;
    none.rlim_cur = 0;
    CHECK(setrlimit(RLIMIT_MEMLOCK, &none) == 0, "RLIMIT_MEMLOCK 0");
    char *a = map(4, RW);
    CHECK(mlock(a, 4 * PAGE) == 0, "root locks past the limit");
    char *b = mmap(NULL, PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    CHECK(b != MAP_FAILED, "MAP_LOCKED past the limit");
    CHECK(mlockall(MCL_CURRENT) == 0 && munlockall() == 0, "mlockall past the limit");
    CHECK(setrlimit(RLIMIT_MEMLOCK, &old) == 0, "restore");
    munmap(a, 4 * PAGE);
    munmap(b, PAGE);
}

int main(void) {
    lock_and_unlock();
    past_the_end_of_a_file();
    map_locked();
    lock_all();
    limit();
    not_inherited(); /* last: it forks */
    return finish("mm_mlock");
}
