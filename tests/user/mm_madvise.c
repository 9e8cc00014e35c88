/*
 * madvise: MADV_DONTNEED (anonymous pages read zero again, private file
 * pages read the file again), MADV_WILLNEED, MADV_POPULATE_READ/WRITE
 * (pages resident afterwards, as mincore sees them; EINVAL where the
 * rights forbid the access, EFAULT past the end of a file, ENOMEM for a
 * hole), the hints, and the errors in Linux's order.
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

/* How many of the `pages` pages at `p` are resident. */
static int resident(void *p, size_t pages) {
    unsigned char vec[256];
    if (pages > sizeof vec || mincore(p, pages * PAGE, vec) != 0)
        return -1;
    int count = 0;
    for (size_t i = 0; i < pages; i++)
        count += vec[i] & 1;
    return count;
}

static int zero(const char *p, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

static void errors(void) {
    char *a = map(4, RW);
    CHECK_ERR(madvise(a, PAGE, 7), EINVAL);      /* unknown advice */
    CHECK_ERR(madvise(a, PAGE, 1000), EINVAL);   /* unknown advice */
    CHECK_ERR(madvise(a + 1, PAGE, MADV_DONTNEED), EINVAL); /* unaligned */
    CHECK_ERR(madvise(a, (size_t)-1, MADV_DONTNEED), EINVAL); /* rounds up to zero */
    CHECK_ERR(madvise(a, (size_t)-1 - 2 * PAGE, MADV_NORMAL), EINVAL); /* wraps */
    CHECK(madvise(a, 0, MADV_DONTNEED) == 0, "nothing to do");
    CHECK(madvise(NULL, 0, 7) == -1, "unknown advice first, even for nothing");
    CHECK(madvise(a + 8 * PAGE, 0, MADV_DONTNEED) == 0, "an empty range needs no mapping");
    munmap(a, 4 * PAGE);
    CHECK_ERR(madvise(a, PAGE, MADV_NORMAL), ENOMEM); /* nothing mapped */
    CHECK_ERR(madvise(a, PAGE, MADV_WILLNEED), ENOMEM);
}

static void hints(void) {
    char *a = map(4, RW);
    a[0] = 1;
    CHECK(madvise(a, 4 * PAGE, MADV_NORMAL) == 0, "MADV_NORMAL");
    CHECK(madvise(a, 4 * PAGE, MADV_RANDOM) == 0, "MADV_RANDOM");
    CHECK(madvise(a, 4 * PAGE, MADV_SEQUENTIAL) == 0, "MADV_SEQUENTIAL");
    CHECK(madvise(a, 4 * PAGE, MADV_WILLNEED) == 0, "MADV_WILLNEED");
    CHECK(madvise(a + PAGE, PAGE, MADV_NORMAL) == 0, "MADV_NORMAL on a part");
    CHECK(a[0] == 1, "hints keep the contents");
    munmap(a, 4 * PAGE);
}

static void dontneed(void) {
    char *a = map(8, RW);
    memset(a, 0x5a, 8 * PAGE);
    CHECK(resident(a, 8) == 8, "all touched");
    CHECK(madvise(a + 2 * PAGE, 3 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
    CHECK(zero(a + 2 * PAGE, 3 * PAGE), "dropped anonymous pages read zero");
    CHECK(a[PAGE] == 0x5a && a[5 * PAGE] == 0x5a, "the others keep their contents");
    CHECK(madvise(a, 8 * PAGE, MADV_DONTNEED) == 0, "all of it");
    CHECK(resident(a, 8) == 0, "no page resident after MADV_DONTNEED");
    a[0] = 3;
    CHECK(a[0] == 3, "usable afterwards");

    /* Across a hole: every mapped part is dropped, then ENOMEM. */
    memset(a, 0x11, 8 * PAGE);
    CHECK(munmap(a + 3 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(madvise(a, 8 * PAGE, MADV_DONTNEED), ENOMEM);
    CHECK(zero(a, 3 * PAGE) && zero(a + 4 * PAGE, 4 * PAGE), "both sides of the hole dropped");

    /* PROT_NONE pages may be dropped too. */
    memset(a, 0x22, PAGE);
    CHECK(mprotect(a, PAGE, PROT_NONE) == 0, "mprotect none");
    CHECK(madvise(a, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED on PROT_NONE");
    CHECK(mprotect(a, PAGE, RW) == 0 && zero(a, PAGE), "dropped");
    munmap(a, 8 * PAGE);

    /* Locked pages may not be dropped. */
    char *l = map(2, RW);
    CHECK(mlock(l, 2 * PAGE) == 0, "mlock");
    l[0] = 9;
    CHECK_ERR(madvise(l, 2 * PAGE, MADV_DONTNEED), EINVAL);
    CHECK(l[0] == 9, "locked page kept");
    CHECK(munlock(l, 2 * PAGE) == 0, "munlock");
    CHECK(madvise(l, 2 * PAGE, MADV_DONTNEED) == 0 && l[0] == 0, "unlocked: dropped");
    munmap(l, 2 * PAGE);
}

static void file_pages(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0, "open");
    static char bytes[3 * PAGE];
    CHECK(pread(fd, bytes, sizeof bytes, 0) == (ssize_t)sizeof bytes, "pread");
    char *f = mmap(NULL, 3 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "mmap file");
    memset(f, 'x', 3 * PAGE);
    CHECK(madvise(f + PAGE, PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED on a private file mapping");
    CHECK(memcmp(f + PAGE, bytes + PAGE, PAGE) == 0, "the page reads the file again");
    CHECK(f[0] == 'x' && f[2 * PAGE] == 'x', "the private copies of the others stay");
    CHECK(madvise(f, 3 * PAGE, MADV_WILLNEED) == 0, "MADV_WILLNEED on a file mapping");
    CHECK(madvise(f, 3 * PAGE, MADV_DONTNEED) == 0 && memcmp(f, bytes, sizeof bytes) == 0, "all from the file");
    munmap(f, 3 * PAGE);

    /* Past the end of the file: MADV_POPULATE_READ fails with EFAULT. */
    struct stat st;
    fstat(fd, &st);
    size_t file_pages = (st.st_size + PAGE - 1) / PAGE;
    char *g = mmap(NULL, (file_pages + 2) * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(g != MAP_FAILED, "mmap past the end");
    CHECK(madvise(g + (file_pages - 1) * PAGE, PAGE, MADV_POPULATE_READ) == 0, "the last page of the file");
    CHECK_ERR(madvise(g + file_pages * PAGE, PAGE, MADV_POPULATE_READ), EFAULT);
    CHECK(madvise(g + file_pages * PAGE, 2 * PAGE, MADV_DONTNEED) == 0, "dropping nothing there");
    munmap(g, (file_pages + 2) * PAGE);
    close(fd);
}

static void populate(void) {
    char *a = map(16, RW);
    CHECK(resident(a, 16) == 0, "nothing resident at first");
    CHECK(madvise(a, 4 * PAGE, MADV_POPULATE_READ) == 0, "MADV_POPULATE_READ");
    CHECK(resident(a, 16) == 4, "four pages resident");
    CHECK(madvise(a + 8 * PAGE, 8 * PAGE, MADV_POPULATE_WRITE) == 0, "MADV_POPULATE_WRITE");
    CHECK(resident(a, 16) == 12, "twelve resident: %d", resident(a, 16));
    CHECK(zero(a, 4 * PAGE) && zero(a + 8 * PAGE, 8 * PAGE), "populated pages read zero");
    CHECK(resident(a, 16) == 12, "reading them changed nothing");

    /* The rights must allow the access: EINVAL otherwise. */
    CHECK(mprotect(a, 16 * PAGE, PROT_READ) == 0, "read-only");
    CHECK_ERR(madvise(a + 4 * PAGE, PAGE, MADV_POPULATE_WRITE), EINVAL);
    CHECK(madvise(a + 4 * PAGE, PAGE, MADV_POPULATE_READ) == 0, "populate read of read-only");
    CHECK(mprotect(a, 16 * PAGE, PROT_NONE) == 0, "none");
    CHECK_ERR(madvise(a + 5 * PAGE, PAGE, MADV_POPULATE_READ), EINVAL);
    CHECK(resident(a, 16) == 13, "thirteen resident: %d", resident(a, 16));

    /* A hole: ENOMEM. */
    CHECK(mprotect(a, 16 * PAGE, RW) == 0, "rw");
    CHECK(munmap(a + 6 * PAGE, PAGE) == 0, "hole");
    CHECK_ERR(madvise(a + 5 * PAGE, 2 * PAGE, MADV_POPULATE_READ), ENOMEM);
    CHECK_ERR(madvise(a + 6 * PAGE, PAGE, MADV_POPULATE_WRITE), ENOMEM);
    munmap(a, 16 * PAGE);
}

static void grow_down(void) {
    /* Dropping the pages of a grow-down mapping keeps it growing. */
    char *g = mmap(NULL, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    CHECK(g != MAP_FAILED, "MAP_GROWSDOWN");
    memset(g, 0x33, 4 * PAGE);
    CHECK(madvise(g, 2 * PAGE, MADV_DONTNEED) == 0, "drop the bottom");
    CHECK(zero(g, 2 * PAGE) && g[2 * PAGE] == 0x33 && g[4 * PAGE - 1] == 0x33, "bottom dropped, top kept");
    g[-1] = 7; /* grows */
    CHECK(g[-1] == 7, "still grows down");
    CHECK(madvise(g + PAGE, 2 * PAGE, MADV_DONTNEED) == 0, "drop the middle");
    CHECK(g[-1] == 7 && zero(g + PAGE, 2 * PAGE) && g[3 * PAGE] == 0x33, "middle dropped");
    g[-PAGE - 1] = 8;
    CHECK(g[-PAGE - 1] == 8 && g[-1] == 7, "grows again");
    munmap(g - 2 * PAGE, 6 * PAGE);
}

int main(void) {
    errors();
    grow_down();
    hints();
    dontneed();
    file_pages();
    populate();
    return finish("mm_madvise");
}
