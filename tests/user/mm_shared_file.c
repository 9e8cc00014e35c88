/*
 * Mappings of files in RAM (a file in /dev/shm, a memfd): MAP_SHARED
 * mappings of one file, in one process and across fork, see each other's
 * writes, and read/pread/pwrite see what they wrote (one page cache); a
 * MAP_PRIVATE mapping reads the file's bytes, follows the file where it
 * has not written, and keeps its own writes to itself; the part of the
 * last page past the end of the file reads zeros and a whole page past it
 * raises SIGBUS, also after ftruncate cuts a mapped file short (in this
 * process and in another that maps it, shared or private, written or
 * not: a private copy goes too), and the pages come back, reading the file
 * again, when it grows; pages are taken on first touch (a 1 GiB shared
 * mapping, anonymous or of a file, costs what is touched), also in a
 * forked child, and mincore reports the file's pages as resident;
 * MAP_POPULATE maps every page at once, shared or private; /proc/self/maps names each mapping's file (/dev/shm/...,
 * "(deleted)" once unlinked, /memfd:NAME (deleted), /dev/zero (deleted)
 * for shared anonymous memory) and shows its offset; PROT_WRITE on a shared mapping needs a descriptor open
 * for writing (EACCES), a private one does not; MADV_DONTNEED on a shared
 * mapping keeps the file's contents, on a private one it drops the copies
 * (the file's bytes again); mremap moves a shared mapping without
 * copying it; an unlinked file lives on in its
 * mappings; msync succeeds.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096L
#define RW (PROT_READ | PROT_WRITE)

static sigjmp_buf jump;
static volatile int got_bus;

static void on_bus(int sig) {
    (void)sig;
    got_bus = 1;
    siglongjmp(jump, 1);
}

/* Reads the byte at p; -2 when that raised SIGBUS. */
static int read_byte(volatile char *p) {
    if (sigsetjmp(jump, 1))
        return -2;
    return *p;
}

static void shared(const char *path) {
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 3 * PAGE) == 0, "a file of three pages");
    char *p = mmap(NULL, 3 * PAGE, RW, MAP_SHARED, fd, 0);
    char *q = mmap(NULL, 3 * PAGE, RW, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED && q != MAP_FAILED && p != q, "two shared mappings");
    CHECK(p[0] == 0 && p[3 * PAGE - 1] == 0, "a new file reads zeros");
    strcpy(p + PAGE, "through p");
    CHECK(!strcmp(q + PAGE, "through p"), "q sees p's write");
    char buf[16] = {0};
    CHECK(pread(fd, buf, 9, PAGE) == 9 && !memcmp(buf, "through p", 9), "pread sees it");
    CHECK(pwrite(fd, "by pwrite", 10, 2 * PAGE) == 10 && !strcmp(p + 2 * PAGE, "by pwrite"),
          "the mapping sees pwrite");
    CHECK(msync(p, 3 * PAGE, MS_SYNC) == 0 && msync(p, PAGE, MS_ASYNC | MS_INVALIDATE) == 0, "msync");

    /* Across fork, and a mapping made in the child. */
    pid_t child = fork();
    if (child == 0) {
        strcpy(p, "child");
        char *own = mmap(NULL, PAGE, RW, MAP_SHARED, fd, 2 * PAGE);
        if (own == MAP_FAILED)
            _exit(2);
        strcpy(own + 100, "child's own mapping");
        _exit(0);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child (%#x)",
          status);
    CHECK(!strcmp(p, "child") && !strcmp(q, "child"), "the parent sees the child's write");
    CHECK(!strcmp(p + 2 * PAGE + 100, "child's own mapping"), "and what it wrote through its own mapping");

    /* MADV_DONTNEED drops the pages from the mapping, not from the file. */
    CHECK(madvise(p, 3 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
    CHECK(!strcmp(p, "child") && !strcmp(p + PAGE, "through p"), "the file's bytes come back");

    /* Private: the file's bytes until written; its writes stay its own. */
    char *r = mmap(NULL, 3 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(r != MAP_FAILED && !strcmp(r + PAGE, "through p"), "a private mapping reads the file");
    strcpy(r, "private");
    CHECK(!strcmp(p, "child"), "its write does not reach the file");
    CHECK(pread(fd, buf, 5, 0) == 5 && !memcmp(buf, "child", 5), "nor read()");
    strcpy(p + PAGE, "later");
    CHECK(!strcmp(r + PAGE, "later"), "where it has not written, it follows the file");
    strcpy(p, "again");
    CHECK(!strcmp(r, "private"), "where it has, it keeps its copy");
    munmap(r, 3 * PAGE);

    /* Moved by mremap, a shared mapping still is the file. */
    char *hole = mmap(NULL, 3 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *moved = mremap(q, 3 * PAGE, 3 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, hole);
    CHECK(moved == hole, "mremap moves a shared mapping");
    strcpy(moved + PAGE, "moved");
    CHECK(!strcmp(p + PAGE, "moved") && pread(fd, buf, 6, PAGE) == 6 && !strcmp(buf, "moved"),
          "its writes still reach the file");
    q = moved;

    /* Unlinked, the file lives on in its mappings. */
    CHECK(unlink(path) == 0 && close(fd) == 0, "unlink and close");
    strcpy(q + PAGE, "still here");
    CHECK(!strcmp(p + PAGE, "still here"), "the mappings still share it");
    munmap(p, 3 * PAGE);
    munmap(q, 3 * PAGE);
}

static void past_the_end(void) {
    int fd = memfd_create("past", 0);
    CHECK(fd >= 0 && ftruncate(fd, PAGE + 100) == 0, "a memfd of a page and 100 bytes");
    char *p = mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "map three pages");
    CHECK(pwrite(fd, "x", 1, PAGE + 99) == 1 && p[PAGE + 99] == 'x', "the last byte of the file");
    CHECK(read_byte(p + PAGE + 100) == 0 && read_byte(p + 2 * PAGE - 1) == 0, "the rest of its page reads zeros");
    CHECK(read_byte(p + 2 * PAGE) == -2 && got_bus, "a page wholly past the end: SIGBUS");
    munmap(p, 3 * PAGE);

    /* The access mode. */
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/mm_shared_file.ro.%d", getpid());
    int rw = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(rw >= 0 && ftruncate(rw, PAGE) == 0, "another file");
    int ro = open(path, O_RDONLY);
    CHECK_ERR(mmap(NULL, PAGE, RW, MAP_SHARED, ro, 0), EACCES);
    char *priv = mmap(NULL, PAGE, RW, MAP_PRIVATE, ro, 0);
    CHECK(priv != MAP_FAILED, "a private writable mapping of a read-only descriptor");
    priv[0] = 1;
    char *shared_ro = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, ro, 0);
    CHECK(shared_ro != MAP_FAILED && shared_ro[0] == 0, "a shared read-only one");
    CHECK_ERR(mprotect(shared_ro, PAGE, RW), EACCES);
    int wo = open(path, O_WRONLY);
    CHECK_ERR(mmap(NULL, PAGE, PROT_READ, MAP_SHARED, wo, 0), EACCES);
    close(wo);
    close(ro);
    close(rw);
    unlink(path);
    close(fd);
}

static void truncated(void) {
    int fd = memfd_create("cut", 0);
    CHECK(fd >= 0 && ftruncate(fd, 3 * PAGE) == 0, "a memfd of three pages");
    char *p = mmap(NULL, 3 * PAGE, RW, MAP_SHARED, fd, 0);
    char *r = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    char *w = mmap(NULL, 3 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED && r != MAP_FAILED && w != MAP_FAILED, "shared and private mappings");
    memset(p, 'a', 3 * PAGE);
    CHECK(r[2 * PAGE] == 'a', "the private one reads the file");
    w[2 * PAGE] = 'w';
    CHECK(w[2 * PAGE] == 'w' && p[2 * PAGE] == 'a', "a private copy of the last page");
    int go[2];
    CHECK(pipe(go) == 0, "pipe");
    pid_t child = fork();
    if (child == 0) {
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(3);
        /* After the parent's truncation: SIGBUS past the end, here too. */
        _exit(read_byte(p + 2 * PAGE) == -2 && read_byte(p + PAGE + 9) == 'a' ? 0 : 1);
    }
    CHECK(ftruncate(fd, PAGE + 10) == 0, "cut it to a page and 10 bytes");
    CHECK(write(go[1], "g", 1) == 1, "tell the child");
    got_bus = 0;
    CHECK(read_byte(p + 2 * PAGE) == -2 && got_bus, "the shared mapping: SIGBUS past the new end");
    got_bus = 0;
    CHECK(read_byte(r + 2 * PAGE) == -2 && got_bus, "the private one too");
    got_bus = 0;
    CHECK(read_byte(w + 2 * PAGE) == -2 && got_bus, "the private copy went too");
    CHECK(read_byte(p + PAGE + 9) == 'a' && read_byte(p + PAGE + 10) == 0, "the last page: its tail reads zeros");
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the other process: SIGBUS too (%#x)", status);

    /* The file grows back: the pages are there again, new, in every mapping. */
    CHECK(ftruncate(fd, 3 * PAGE) == 0, "grow it back to three pages");
    got_bus = 0;
    CHECK(read_byte(p + 2 * PAGE) == 0 && !got_bus, "the shared mapping's page is back, zeros");
    p[2 * PAGE] = 'n';
    char c = 0;
    CHECK(pread(fd, &c, 1, 2 * PAGE) == 1 && c == 'n', "pread sees the write to it");
    CHECK(read_byte(r + 2 * PAGE) == 'n' && read_byte(w + 2 * PAGE) == 'n', "the private ones read the file again");
    munmap(p, 3 * PAGE);
    munmap(r, 3 * PAGE);
    munmap(w, 3 * PAGE);
    close(go[0]);
    close(go[1]);
    close(fd);
}

/* The resident set in kB (VmRSS of /proc/self/status); -1 if unread. */
static long rss_kb(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *line = strstr(buf, "VmRSS:");
    return line ? strtol(line + 6, NULL, 10) : -1;
}

static void lazy(void) {
    const long big = 1L << 30;
    long before = rss_kb();
    char *anon = mmap(NULL, big, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED, "1 GiB of shared anonymous memory");
    int fd = memfd_create("big", 0);
    CHECK(fd >= 0 && ftruncate(fd, big) == 0, "a memfd of 1 GiB");
    char *file = mmap(NULL, big, RW, MAP_SHARED, fd, 0);
    CHECK(file != MAP_FAILED, "map all of it shared");
    anon[0] = 1;
    anon[big - 1] = 2;
    file[big / 2] = 3;
    long after = rss_kb();
    CHECK(before > 0 && after - before < 16 * 1024, "three pages touched cost little: %ld kB -> %ld kB", before,
          after);
    pid_t child = fork();
    if (child == 0) {
        /* Pages nobody touched yet: the parent sees the child's writes. */
        anon[big / 2] = 4;
        file[PAGE] = 5;
        _exit(anon[big - 1] == 2 && file[big / 2] == 3 ? 0 : 1);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child reads the parent's pages (%#x)", status);
    CHECK(anon[big / 2] == 4 && file[PAGE] == 5, "the parent reads the child's writes to untouched pages");
    char c = 0;
    CHECK(pread(fd, &c, 1, PAGE) == 1 && c == 5, "and so does pread");
    unsigned char vec[2] = {9, 9};
    CHECK(pwrite(fd, "p", 1, 7 * PAGE) == 1 && mincore(file + 7 * PAGE, 2 * PAGE, vec) == 0, "mincore");
    CHECK(vec[0] == 1 && vec[1] == 0, "a page the file holds is resident, unmapped here; an untouched one is not");
    munmap(anon, big);
    munmap(file, big);
    close(fd);
}

/* MAP_POPULATE of a file's pages: every page is mapped at once (the
 * resident set grows by all of them) and holds the file's bytes; a shared
 * writable mapping's writes reach the file, a private one's do not. */
static void populated(void) {
    const long pages = 256;
    int fd = memfd_create("populated", 0);
    CHECK(fd >= 0 && ftruncate(fd, pages * PAGE) == 0, "a memfd of 1 MiB");
    CHECK(pwrite(fd, "third", 6, 3 * PAGE) == 6 && pwrite(fd, "last", 5, (pages - 1) * PAGE) == 5, "two pages written");
    long before = rss_kb();
    char *s = mmap(NULL, pages * PAGE, RW, MAP_SHARED | MAP_POPULATE, fd, 0);
    long after = rss_kb();
    CHECK(s != MAP_FAILED, "MAP_SHARED | MAP_POPULATE");
    CHECK(before > 0 && after - before >= pages * PAGE / 1024, "every page mapped at once: %ld kB -> %ld kB", before,
          after);
    unsigned char vec[256];
    memset(vec, 9, sizeof vec);
    int resident = 0;
    CHECK(mincore(s, pages * PAGE, vec) == 0, "mincore");
    for (long i = 0; i < pages; i++)
        resident += vec[i] & 1;
    CHECK(resident == pages, "%d of %ld pages resident", resident, pages);
    CHECK(!strcmp(s + 3 * PAGE, "third") && !strcmp(s + (pages - 1) * PAGE, "last") && s[5 * PAGE] == 0,
          "the file's bytes");
    strcpy(s + 5 * PAGE, "through s");
    char buf[16] = {0};
    CHECK(pread(fd, buf, 10, 5 * PAGE) == 10 && !strcmp(buf, "through s"), "pread sees the shared mapping's write");
    char *r = mmap(NULL, pages * PAGE, RW, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    CHECK(r != MAP_FAILED && !strcmp(r + 5 * PAGE, "through s") && !strcmp(r + 3 * PAGE, "third"),
          "MAP_PRIVATE | MAP_POPULATE reads the file");
    strcpy(r + 3 * PAGE, "mine");
    CHECK(pread(fd, buf, 6, 3 * PAGE) == 6 && !strcmp(buf, "third") && !strcmp(s + 3 * PAGE, "third"),
          "its write stays its own");
    char *ro = mmap(NULL, pages * PAGE, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    CHECK(ro != MAP_FAILED && !strcmp(ro + 5 * PAGE, "through s"), "a read-only shared one");
    munmap(s, pages * PAGE);
    munmap(r, pages * PAGE);
    munmap(ro, pages * PAGE);
    close(fd);
}

/* The name field of the /proc/self/maps line that starts at p, and its
 * offset; "" if there is none. */
static const char *map_name(void *p, unsigned long *offset) {
    static char line[512];
    static char name[256];
    name[0] = 0;
    int at = 0;
    if (maps_line(p, line, sizeof line) && sscanf(line, "%*s %*s %lx %*s %*s %n", offset, &at) >= 1 && at > 0)
        snprintf(name, sizeof name, "%s", line + at);
    return name;
}

static void dontneed_private(void) {
    int fd = memfd_create("dontneed", 0);
    CHECK(fd >= 0 && pwrite(fd, "file", 4, PAGE) == 4, "a memfd with bytes on its second page");
    char *p = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED && !strcmp(p + PAGE, "file"), "a private mapping reads them");
    strcpy(p + PAGE, "mine");
    CHECK(madvise(p, 2 * PAGE, MADV_DONTNEED) == 0, "MADV_DONTNEED");
    CHECK(!strcmp(p + PAGE, "file"), "the private copy is gone: the file's bytes again ('%s')", p + PAGE);
    munmap(p, 2 * PAGE);
    close(fd);
}

static void names(void) {
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/mm_shared_file.names.%d", getpid());
    int fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
    CHECK(fd >= 0 && ftruncate(fd, 4 * PAGE) == 0, "a file in /dev/shm");
    char *p = mmap(NULL, 2 * PAGE, RW, MAP_SHARED, fd, 2 * PAGE);
    CHECK(p != MAP_FAILED, "map its last two pages");
    unsigned long offset = 0;
    const char *name = map_name(p, &offset);
    CHECK(!strcmp(name, path) && offset == 2 * PAGE, "maps names it: '%s' at %#lx", name, offset);
    CHECK(unlink(path) == 0, "unlink it");
    char deleted[96];
    snprintf(deleted, sizeof deleted, "%s (deleted)", path);
    name = map_name(p, &offset);
    CHECK(!strcmp(name, deleted), "then it is deleted: '%s'", name);
    munmap(p, 2 * PAGE);
    close(fd);

    int memfd = memfd_create("named", 0);
    CHECK(memfd >= 0 && ftruncate(memfd, PAGE) == 0, "a memfd");
    char *m = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, memfd, 0);
    name = map_name(m, &offset);
    CHECK(!strcmp(name, "/memfd:named (deleted)"), "a memfd's mapping: '%s'", name);
    char link[64], target[128] = {0};
    snprintf(link, sizeof link, "/proc/self/fd/%d", memfd);
    CHECK(readlink(link, target, sizeof target - 1) > 0 && !strcmp(target, "/memfd:named (deleted)"),
          "and its descriptor's link: '%s'", target);
    munmap(m, PAGE);
    close(memfd);

    char *anon = mmap(NULL, PAGE, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    name = map_name(anon, &offset);
    CHECK(!strcmp(name, "/dev/zero (deleted)") && offset == 0, "shared anonymous memory: '%s'", name);
    munmap(anon, PAGE);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_bus;
    sigaction(SIGBUS, &sa, NULL);
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/mm_shared_file.%d", getpid());
    shared(path);
    past_the_end();
    truncated();
    lazy();
    populated();
    dontneed_private();
    names();
    return finish("mm_shared_file");
}
