/*
 * mremap: shrinking, growing in place, moving (MREMAP_MAYMOVE), moving to
 * a chosen place (MREMAP_FIXED), moving and leaving the old range mapped
 * but empty (MREMAP_DONTUNMAP), each with its errors in Linux's order, and
 * the contents, which move with the mapping: anonymous pages keep what
 * was written to them, file pages keep the file's bytes (or the private
 * copy written over them), untouched pages stay zero.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

static sigjmp_buf recover;
static volatile int fault_signal;

static void on_fault(int sig, siginfo_t *info, void *context) {
    (void)info;
    (void)context;
    fault_signal = sig;
    siglongjmp(recover, 1);
}

/* 0 if the read went through, else the signal it raised. */
static int try_read(volatile char *p) {
    fault_signal = 0;
    if (sigsetjmp(recover, 1) == 0) {
        (void)*p;
        return 0;
    }
    return fault_signal;
}

static char *map(size_t pages, int prot) {
    return mmap(NULL, pages * PAGE, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

/* A mapping of `pages` pages with nothing mapped for `pages` pages after it. */
static char *map_with_room(size_t pages, size_t room) {
    char *p = map(pages + room, RW);
    if (p != MAP_FAILED)
        munmap(p + pages * PAGE, room * PAGE);
    return p;
}

static void fill(char *p, size_t pages, int seed) {
    for (size_t i = 0; i < pages; i++) {
        p[i * PAGE] = (char)(seed + i);
        p[i * PAGE + PAGE - 1] = (char)(seed + 2 * i);
    }
}

static int filled(const char *p, size_t pages, int seed) {
    for (size_t i = 0; i < pages; i++)
        if (p[i * PAGE] != (char)(seed + i) || p[i * PAGE + PAGE - 1] != (char)(seed + 2 * i))
            return 0;
    return 1;
}

static int zero(const char *p, size_t pages) {
    for (size_t i = 0; i < pages * PAGE; i += 512)
        if (p[i])
            return 0;
    return 1;
}

static long remap(void *old, size_t old_len, size_t new_len, long flags, void *new_addr) {
    return syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
}

static void errors(void) {
    char *a = map_with_room(4, 4);
    CHECK(a != MAP_FAILED, "mmap");
    fill(a, 4, 1);
    CHECK_ERR(remap(a, PAGE, PAGE, 0x100, 0), EINVAL);                                     /* unknown flag */
    CHECK_ERR(remap(a, PAGE, PAGE, MREMAP_FIXED, a + 8 * PAGE), EINVAL);                   /* FIXED without MAYMOVE */
    CHECK_ERR(remap(a, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0), EINVAL);     /* resizing DONTUNMAP */
    CHECK_ERR(remap(a, PAGE, PAGE, MREMAP_DONTUNMAP, 0), EINVAL);                          /* DONTUNMAP without MAYMOVE */
    CHECK_ERR(remap(a + 1, PAGE, PAGE, 0, 0), EINVAL);                                     /* unaligned */
    CHECK_ERR(remap(a, PAGE, 0, 0, 0), EINVAL);                                            /* zero new length */
    CHECK_ERR(remap(a, 0, PAGE, MREMAP_MAYMOVE, 0), EINVAL);                               /* duplicate a private mapping */
    CHECK_ERR(remap(a + 4 * PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), EFAULT);             /* nothing there */
    CHECK_ERR(remap(a + 2 * PAGE, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE, 0), EFAULT);         /* runs past the mapping */
    CHECK_ERR(remap(a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 8 * PAGE + 1), EINVAL); /* unaligned target */
    CHECK_ERR(remap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + PAGE), EINVAL); /* overlapping target */
    CHECK_ERR(remap(a, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)(1UL << 47)), EINVAL); /* past user space */
    CHECK(remap(a, 4 * PAGE, 4 * PAGE, 0, 0) == (long)a, "same size: nothing to do");
    CHECK(filled(a, 4, 1), "errors changed nothing");

    /* Growing in place needs room: with a neighbour, ENOMEM unless it may move. */
    char *wall = mmap(a + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(wall == a + 4 * PAGE, "neighbour");
    CHECK_ERR(remap(a, 4 * PAGE, 6 * PAGE, 0, 0), ENOMEM);
    CHECK_ERR(remap(a, 2 * PAGE, 3 * PAGE, 0, 0), ENOMEM); /* not at the end of the mapping */
    CHECK(filled(a, 4, 1), "refused growth changed nothing");
    munmap(a, 5 * PAGE);
}

static void shrink_and_grow(void) {
    char *a = map_with_room(8, 8);
    fill(a, 8, 3);
    /* Shrinking unmaps the tail, in place. */
    CHECK(remap(a, 8 * PAGE, 3 * PAGE, 0, 0) == (long)a, "shrink");
    CHECK(filled(a, 3, 3), "shrunk mapping keeps its head");
    CHECK(try_read(a + 3 * PAGE) == SIGSEGV, "the tail is gone");
    /* Growing in place: the old pages stay, the new ones read zero. */
    CHECK(remap(a, 3 * PAGE, 10 * PAGE, 0, 0) == (long)a, "grow in place");
    CHECK(filled(a, 3, 3), "grown mapping keeps its pages");
    CHECK(zero(a + 3 * PAGE, 7), "the new pages read zero");
    a[9 * PAGE] = 5;
    CHECK(a[9 * PAGE] == 5, "the new pages are writable");
    /* A length that is not a page multiple is rounded up. */
    CHECK(remap(a, 10 * PAGE, 4 * PAGE + 1, 0, 0) == (long)a, "shrink to an odd length");
    CHECK(try_read(a + 4 * PAGE) == 0 && try_read(a + 5 * PAGE) == SIGSEGV, "rounded up to whole pages");
    munmap(a, 5 * PAGE);
}

static void move(void) {
    /* Growing with MAYMOVE where a neighbour is in the way moves the mapping. */
    char *a = map_with_room(4, 1);
    fill(a, 4, 7);
    char *wall = mmap(a + 4 * PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(wall == a + 4 * PAGE, "neighbour");
    long moved = remap(a, 4 * PAGE, 64 * PAGE, MREMAP_MAYMOVE, 0);
    CHECK(moved != -1 && moved != (long)a, "moved: %ld %s", moved, strerror(errno));
    char *b = (char *)moved;
    CHECK(filled(b, 4, 7), "the contents moved with the mapping");
    CHECK(zero(b + 4 * PAGE, 60), "the new part reads zero");
    CHECK(try_read(a) == SIGSEGV, "the old place is unmapped");
    CHECK(try_read(wall) == 0, "the neighbour stays");
    munmap(wall, PAGE);

    /* MREMAP_FIXED: to a chosen place, replacing what is there. */
    char *target = map(8, PROT_READ);
    CHECK(target != MAP_FAILED, "target");
    long fixed = remap(b, 4 * PAGE, 6 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + PAGE);
    CHECK(fixed == (long)(target + PAGE), "fixed: %ld %s", fixed, strerror(errno));
    CHECK(filled(target + PAGE, 4, 7), "the contents at the fixed place");
    CHECK(zero(target + 5 * PAGE, 2), "grown part zero (the old mapping there replaced)");
    (target + PAGE)[0] = 42;
    CHECK((target + PAGE)[0] == 42, "writable as the moved mapping was");
    CHECK(try_read(target) == 0 && try_read(target + 7 * PAGE) == 0, "the rest of the target stays");
    CHECK(try_read(b) == SIGSEGV && try_read(b + 3 * PAGE) == SIGSEGV, "the moved part of the source is gone");
    CHECK(try_read(b + 4 * PAGE) == 0, "the rest of the source stays");
    munmap(b + 4 * PAGE, 60 * PAGE);

    /* MREMAP_FIXED that shrinks: only new_len bytes move, the rest is unmapped. */
    char *c = map(4, RW);
    fill(c, 4, 11);
    char *d = map(2, PROT_READ);
    CHECK(remap(c, 4 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, d) == (long)d, "fixed shrink");
    CHECK(filled(d, 2, 11), "the head moved");
    CHECK(try_read(c + 3 * PAGE) == SIGSEGV, "the tail was unmapped");
    munmap(d, 2 * PAGE);
    munmap(target, 8 * PAGE);
}

static void dontunmap(void) {
    char *a = map(4, RW);
    fill(a, 4, 13);
    long moved = remap(a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    CHECK(moved != -1 && moved != (long)a, "DONTUNMAP: %s", strerror(errno));
    char *b = (char *)moved;
    CHECK(filled(b, 4, 13), "the pages moved");
    CHECK(try_read(a) == 0 && zero(a, 4), "the old range stays mapped, empty");
    a[0] = 1;
    CHECK(a[0] == 1, "and writable");
    munmap(a, 4 * PAGE);
    munmap(b, 4 * PAGE);
}

static void protections(void) {
    /* A moved mapping keeps its protections; a PROT_NONE page keeps its contents. */
    char *a = map(3, RW);
    fill(a, 3, 17);
    CHECK(mprotect(a + PAGE, PAGE, PROT_NONE) == 0, "mprotect none");
    /* Three parts with different rights are three mappings: growing the first runs into the second. */
    CHECK_ERR(remap(a, PAGE, 2 * PAGE, 0, 0), ENOMEM);
    long moved = remap(a + PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0);
    CHECK(moved != -1, "move the PROT_NONE page: %s", strerror(errno));
    if (moved == -1)
        return;
    char *b = (char *)moved;
    CHECK(try_read(b) == SIGSEGV, "still PROT_NONE after the move");
    CHECK(mprotect(b, 2 * PAGE, PROT_READ) == 0, "mprotect read");
    CHECK(b[0] == (char)18 && b[PAGE - 1] == (char)19, "its contents moved too");
    CHECK(zero(b + PAGE, 1), "the new page reads zero");
    CHECK(filled(a, 1, 17) && a[2 * PAGE] == (char)19, "the neighbours stay");
    munmap(a, 3 * PAGE);
    munmap(b, 2 * PAGE);
}

static void files(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0, "open: %s", strerror(errno));
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size > (off_t)(4 * PAGE), "fstat");
    static char bytes[4 * PAGE];
    CHECK(pread(fd, bytes, sizeof bytes, PAGE) == (ssize_t)sizeof bytes, "pread");
    char *f = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, PAGE);
    CHECK(f != MAP_FAILED, "mmap file");
    f[5] = 'Q'; /* a private copy of the first page */
    /* Growing a file mapping maps more of the file. */
    long grown = remap(f, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, 0);
    CHECK(grown != -1, "grow the file mapping: %s", strerror(errno));
    char *g = (char *)grown;
    CHECK(g[5] == 'Q', "the private copy moved");
    CHECK(memcmp(g + 6, bytes + 6, 4 * PAGE - 6) == 0, "the rest is the file's bytes");
    /* Moving the untouched part elsewhere keeps the file's bytes. */
    char *spot = map(2, PROT_READ);
    CHECK(remap(g + 2 * PAGE, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, spot) == (long)spot, "move tail");
    CHECK(memcmp(spot, bytes + 2 * PAGE, 2 * PAGE) == 0, "file bytes at the new place");
    munmap(g, 2 * PAGE);
    munmap(spot, 2 * PAGE);

    /* Growing a file mapping in place maps the file's next pages. */
    char *h = map_with_room(2, 4);
    CHECK(mmap(h, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, PAGE) == h, "file mapping with room");
    CHECK(remap(h, 2 * PAGE, 4 * PAGE, 0, 0) == (long)h, "grown in place: %s", strerror(errno));
    CHECK(memcmp(h, bytes, 4 * PAGE) == 0, "the file's next pages");

    /* MREMAP_DONTUNMAP of a private file mapping: the old range reads the file again. */
    char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, PAGE);
    memset(p, 'w', 2 * PAGE);
    long kept = remap(p, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    CHECK(kept != -1 && ((char *)kept)[0] == 'w' && ((char *)kept)[2 * PAGE - 1] == 'w', "the copies moved");
    CHECK(memcmp(p, bytes, 2 * PAGE) == 0, "the old range reads the file again");
    munmap(h, 4 * PAGE);
    munmap(p, 2 * PAGE);
    munmap((char *)kept, 2 * PAGE);
    close(fd);
}

static void address_space_limit(void) {
    struct rlimit old, small;
    CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
    char *a = map(4, RW);
    fill(a, 4, 23);
    small = old;
    small.rlim_cur = 256UL << 20;
    CHECK(setrlimit(RLIMIT_AS, &small) == 0, "setrlimit AS");
    CHECK_ERR(remap(a, 4 * PAGE, 512UL << 20, MREMAP_MAYMOVE, 0), ENOMEM);
    CHECK(filled(a, 4, 23), "refused growth changed nothing");
    CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restore AS");
    long moved = remap(a, 4 * PAGE, 512UL << 20, MREMAP_MAYMOVE, 0);
    CHECK(moved != -1 && filled((char *)moved, 4, 23), "without the limit it grows");
    munmap((char *)moved, 512UL << 20);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    errors();
    shrink_and_grow();
    move();
    dontunmap();
    protections();
    files();
    address_space_limit();
    return finish("mm_mremap");
}
