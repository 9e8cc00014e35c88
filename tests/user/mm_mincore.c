/*
 * mincore: which pages are resident (touched anonymous pages, any page
 * of a file that is in memory), with its errors in Linux's order: EINVAL
 * for an unaligned start, ENOMEM for a range not mapped or past user
 * space, EFAULT for a vector that cannot be written.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

static char *map(size_t pages, int prot) {
    return mmap(NULL, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void) {
    unsigned char vec[64];
    char *a = map(8, RW);
    CHECK(a != MAP_FAILED, "mmap");

    /* Untouched pages are not resident; touched ones are. */
    memset(vec, 0xee, sizeof vec);
    CHECK(mincore(a, 8 * PAGE, vec) == 0, "mincore");
    int untouched = 1;
    for (int i = 0; i < 8; i++)
        untouched &= vec[i] == 0;
    CHECK(untouched, "fresh pages are not resident");
    CHECK(vec[8] == 0xee, "only one byte a page is written");
    a[0] = 1;
    a[3 * PAGE + 100] = 1;
    (void)*(volatile char *)(a + 5 * PAGE); /* a read touches too */
    CHECK(mincore(a, 8 * PAGE, vec) == 0, "mincore");
    CHECK(vec[0] == 1 && vec[1] == 0 && vec[2] == 0 && vec[3] == 1 && vec[4] == 0 && vec[5] == 1 && vec[7] == 0,
          "resident where touched: %d%d%d%d%d%d%d%d", vec[0], vec[1], vec[2], vec[3], vec[4], vec[5], vec[6], vec[7]);

    /* The length is rounded up to whole pages. */
    memset(vec, 0xee, sizeof vec);
    CHECK(mincore(a + 3 * PAGE, PAGE + 1, vec) == 0, "odd length");
    CHECK(vec[0] == 1 && vec[1] == 0 && vec[2] == 0xee, "two pages reported");

    /* A PROT_NONE page that was touched is still resident. */
    CHECK(mprotect(a, PAGE, PROT_NONE) == 0, "mprotect none");
    CHECK(mincore(a, PAGE, vec) == 0 && vec[0] == 1, "PROT_NONE page resident");
    CHECK(mprotect(a, PAGE, RW) == 0, "mprotect rw");

    /* Errors. */
    CHECK_ERR(mincore(a + 1, PAGE, vec), EINVAL);
    CHECK_ERR(mincore(a, PAGE, NULL), EFAULT);
    CHECK_ERR(mincore(a, PAGE, (unsigned char *)(1UL << 47)), EFAULT);
    CHECK_ERR(mincore((void *)((1UL << 47) - PAGE), 2 * PAGE, vec), ENOMEM);
    CHECK(mincore(a, 0, NULL) == 0, "nothing to report");
    CHECK(mincore(a + 64 * PAGE, 0, vec) == 0, "an empty range needs no mapping");
    CHECK(munmap(a + 6 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(mincore(a + 6 * PAGE, PAGE, vec), ENOMEM);
    CHECK_ERR(mincore(a, PAGE, (unsigned char *)a + 6 * PAGE), EFAULT); /* vector unmapped */
    memset(vec, 0xee, sizeof vec);
    CHECK_ERR(mincore(a, 8 * PAGE, vec), ENOMEM);
    CHECK(vec[0] == 1 && vec[5] == 1 && vec[6] == 0xee, "the pages before the hole are reported");

    /* A vector in read-only memory: EFAULT. */
    char *ro = map(1, PROT_READ);
    CHECK_ERR(mincore(a, PAGE, (unsigned char *)ro), EFAULT);
    munmap(ro, PAGE);

    /* A file whose bytes are in memory: its pages are resident, touched or not. */
    int fd = open("/proc/self/exe", O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0, "open");
    static char bytes[4 * PAGE];
    CHECK(pread(fd, bytes, sizeof bytes, 0) == (ssize_t)sizeof bytes, "read the file first");
    char *f = mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "mmap file");
    CHECK(mincore(f, 4 * PAGE, vec) == 0, "mincore file");
    CHECK((vec[0] & 1) && (vec[1] & 1) && (vec[2] & 1) && (vec[3] & 1), "file pages in memory are resident");
    munmap(f, 4 * PAGE);
    close(fd);
    munmap(a, 8 * PAGE);
    return finish("mm_mincore");
}
