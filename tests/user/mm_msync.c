/*
 * msync: the flags and range checks in Linux's order (EINVAL for unknown
 * flags, MS_ASYNC with MS_SYNC, an unaligned start; ENOMEM for a range
 * with nothing mapped in it or a hole; EBUSY for MS_INVALIDATE of locked
 * memory), and success over anonymous and file mappings.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

int main(void) {
    char *a = mmap(NULL, 8 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(a != MAP_FAILED, "mmap");
    a[0] = 1;

    CHECK(msync(a, 8 * PAGE, MS_SYNC) == 0, "MS_SYNC");
    CHECK(msync(a, 8 * PAGE, MS_ASYNC) == 0, "MS_ASYNC");
    CHECK(msync(a, 8 * PAGE, MS_INVALIDATE) == 0, "MS_INVALIDATE");
    CHECK(msync(a, 8 * PAGE, MS_SYNC | MS_INVALIDATE) == 0, "MS_SYNC | MS_INVALIDATE");
    CHECK(msync(a, 0, MS_SYNC) == 0, "nothing");
    CHECK(msync(a, 1, MS_SYNC) == 0, "rounded up");
    CHECK(msync(a, 8 * PAGE, 0) == 0, "no flags");

    CHECK_ERR(msync(a, PAGE, MS_ASYNC | MS_SYNC), EINVAL);
    CHECK_ERR(msync(a, PAGE, 8), EINVAL);
    CHECK_ERR(msync(a + 1, PAGE, MS_SYNC), EINVAL);
    CHECK_ERR(msync(a + 1, 0, 8), EINVAL); /* flags first */
    CHECK_ERR(msync(a, (size_t)-PAGE, MS_SYNC), ENOMEM); /* wraps */

    /* Holes: ENOMEM, after the mapped parts are done. */
    CHECK(munmap(a + 4 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(msync(a, 8 * PAGE, MS_SYNC), ENOMEM);
    CHECK_ERR(msync(a, 8 * PAGE, MS_ASYNC), ENOMEM);
    CHECK_ERR(msync(a + 4 * PAGE, PAGE, MS_SYNC), ENOMEM);
    CHECK_ERR(msync(a + 4 * PAGE, PAGE, MS_INVALIDATE), ENOMEM);
    CHECK(msync(a + 5 * PAGE, 3 * PAGE, MS_SYNC) == 0, "after the hole");
    munmap(a, 8 * PAGE);
    CHECK_ERR(msync(a, PAGE, MS_SYNC), ENOMEM);
    CHECK_ERR(msync((void *)((1UL << 47) - PAGE), PAGE, MS_SYNC), ENOMEM);

    /* Locked memory: MS_INVALIDATE is EBUSY. */
    char *l = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mlock(l, PAGE) == 0, "mlock");
    CHECK_ERR(msync(l, 2 * PAGE, MS_INVALIDATE), EBUSY);
    CHECK(msync(l, 2 * PAGE, MS_SYNC) == 0, "MS_SYNC of locked memory");
    CHECK(msync(l + PAGE, PAGE, MS_INVALIDATE) == 0, "the unlocked page");
    munmap(l, 2 * PAGE);

    /* A file mapping, private and shared. */
    int fd = open("/proc/self/exe", O_RDONLY);
    char *f = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "mmap file");
    f[0] = 'z';
    CHECK(msync(f, 2 * PAGE, MS_SYNC) == 0, "msync private file mapping");
    char first;
    CHECK(pread(fd, &first, 1, 0) == 1 && first == 0x7f, "nothing written back");
    char *s = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED, "mmap shared");
    CHECK(msync(s, 2 * PAGE, MS_SYNC | MS_INVALIDATE) == 0, "msync shared file mapping");
    munmap(f, 2 * PAGE);
    munmap(s, 2 * PAGE);
    close(fd);
    return finish("mm_msync");
}
