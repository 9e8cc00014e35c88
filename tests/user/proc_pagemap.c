/*
 * /proc/self/pagemap, 8 bytes a page at offset va / 4096 * 8, as Linux
 * 6.1 writes them: bit 63 once the page has its frame (a touch,
 * MADV_POPULATE_READ/WRITE, mlock), the frame number in bits 0-54 (the
 * program runs as root, who is shown it), bit 56 while no other process
 * maps the frame (after fork, until a write copies it), bit 61 for a file's
 * page, 0 for an untouched or unmapped page; reads of whole entries only
 * (EINVAL otherwise), nothing past the end of user space. And the two vm
 * sysctls: /proc/sys/vm/mmap_min_addr and max_map_count.
 *
 * needs: CAP_SYS_ADMIN
 */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

#define PRESENT (1ULL << 63)
#define SWAPPED (1ULL << 62)
#define FILE_PAGE (1ULL << 61)
#define EXCLUSIVE (1ULL << 56)
#define SOFT_DIRTY (1ULL << 55)
#define PFN ((1ULL << 55) - 1)

static int pagemap;

static uint64_t entry_of(const void *p) {
    uint64_t entry = ~0ULL;
    if (pread(pagemap, &entry, 8, (uintptr_t)p / PAGE * 8) != 8)
        return ~0ULL;
    return entry;
}

static void entries(void) {
    char *a = mmap(NULL, 8 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(entry_of(a) == 0, "an untouched page: 0 (%#llx)", (unsigned long long)entry_of(a));
    a[0] = 1;
    uint64_t e = entry_of(a);
    CHECK(e & PRESENT, "a written page is present (%#llx)", (unsigned long long)e);
    CHECK((e & PFN) != 0, "root sees its frame number");
    CHECK(e & EXCLUSIVE, "mapped by this process only");
    CHECK(!(e & (SWAPPED | FILE_PAGE)), "not swapped, not a file's");
    CHECK(entry_of(a + PAGE) == 0, "its neighbour is untouched");

    /* One read, many entries: the same as one by one. */
    a[3 * PAGE] = 1;
    uint64_t many[8];
    CHECK(pread(pagemap, many, sizeof many, (uintptr_t)a / PAGE * 8) == sizeof many, "read 8 entries");
    int same = 1;
    for (int i = 0; i < 8; i++)
        same &= many[i] == entry_of(a + i * PAGE);
    CHECK(same, "each entry as read alone");
    CHECK((many[0] & PRESENT) && !(many[1] & PRESENT) && !(many[2] & PRESENT) && (many[3] & PRESENT),
          "pages 0 and 3 present");
    CHECK((many[0] & PFN) != (many[3] & PFN), "two frames");

    /* The file offset moves with read, and lseek sets it. */
    CHECK(lseek(pagemap, (off_t)((uintptr_t)a / PAGE * 8), SEEK_SET) == (off_t)((uintptr_t)a / PAGE * 8), "lseek");
    uint64_t two[2];
    CHECK(read(pagemap, two, sizeof two) == sizeof two && two[0] == many[0] && two[1] == many[1], "read at the offset");
    CHECK(lseek(pagemap, 0, SEEK_CUR) == (off_t)((uintptr_t)a / PAGE * 8 + 16), "the offset moved by 16");

    /* Whole entries only. */
    uint64_t one;
    CHECK_ERR(pread(pagemap, &one, 4, (uintptr_t)a / PAGE * 8), EINVAL);
    CHECK_ERR(pread(pagemap, &one, 8, (uintptr_t)a / PAGE * 8 + 4), EINVAL);
    CHECK(pread(pagemap, &one, 0, 0) == 0, "a read of nothing");
    CHECK(pread(pagemap, &one, 8, (1ULL << 57) / PAGE * 8) == 0, "nothing past the end of user space");
    void *volatile bad = (void *)8;
    CHECK_ERR(pread(pagemap, bad, 8, (uintptr_t)a / PAGE * 8), EFAULT);

    /* Populating and locking give frames; unmapping takes them away. */
    CHECK(madvise(a + 4 * PAGE, PAGE, MADV_POPULATE_READ) == 0, "MADV_POPULATE_READ");
    CHECK(entry_of(a + 4 * PAGE) & PRESENT, "populated for reading: present");
    CHECK(madvise(a + 5 * PAGE, PAGE, MADV_POPULATE_WRITE) == 0, "MADV_POPULATE_WRITE");
    CHECK(entry_of(a + 5 * PAGE) & PRESENT, "populated for writing: present");
    CHECK(mlock(a + 6 * PAGE, PAGE) == 0 && (entry_of(a + 6 * PAGE) & PRESENT), "locked: present");
    CHECK(madvise(a, PAGE, MADV_DONTNEED) == 0 && entry_of(a) == 0, "MADV_DONTNEED: 0 again");
    munmap(a, 8 * PAGE);
    CHECK(entry_of(a + 3 * PAGE) == 0, "unmapped: 0");
}

static void shared_after_fork(void) {
    char *a = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    a[PAGE] = 1;
    pid_t child = fork();
    if (child == 0) {
        int ok = (entry_of(a) & (PRESENT | EXCLUSIVE)) == PRESENT; /* shared with the parent */
        a[0] = 2;                                                   /* copied: the child's own */
        ok = ok && (entry_of(a) & (PRESENT | EXCLUSIVE)) == (PRESENT | EXCLUSIVE);
        ok = ok && (entry_of(a + PAGE) & (PRESENT | EXCLUSIVE)) == PRESENT;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: shared until written (%#x)", status);
    munmap(a, 2 * PAGE);
}

static void file_page(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    char *f = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    volatile char c = f[0];
    (void)c;
    uint64_t e = entry_of(f);
    CHECK((e & PRESENT) && (e & FILE_PAGE), "a private file page read: present, the file's (%#llx)",
          (unsigned long long)e);
    munmap(f, PAGE);
    close(fd);
}

static long read_number(const char *path) {
    char text[64] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0 || text[got - 1] != '\n')
        return -1;
    return strtol(text, NULL, 10);
}

static void sysctls(void) {
    long min_addr = read_number("/proc/sys/vm/mmap_min_addr");
    CHECK(min_addr >= 0 && min_addr % PAGE == 0, "mmap_min_addr: %ld", min_addr);
    long max_count = read_number("/proc/sys/vm/max_map_count");
    CHECK(max_count > 0, "max_map_count: %ld", max_count);
    /* A hint below mmap_min_addr is not used. */
    void *low = mmap((void *)PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(low != MAP_FAILED && (uintptr_t)low >= (uintptr_t)min_addr, "a low hint lands at or above it (%p)", low);
    munmap(low, PAGE);
    struct stat st;
    CHECK(stat("/proc/sys/vm/mmap_min_addr", &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0644,
          "a sysctl file, 0644 (%o)", st.st_mode);
    CHECK(stat("/proc/self/pagemap", &st) == 0 && (st.st_mode & 0777) == 0400, "pagemap is 0400 (%o)", st.st_mode);
    DIR *vm = opendir("/proc/sys/vm");
    int seen = 0;
    struct dirent *d;
    while (vm && (d = readdir(vm)) != NULL)
        seen += strcmp(d->d_name, "mmap_min_addr") == 0 || strcmp(d->d_name, "max_map_count") == 0;
    if (vm)
        closedir(vm);
    CHECK(seen == 2, "/proc/sys/vm lists both");
}

int main(void) {
    pagemap = open("/proc/self/pagemap", O_RDONLY);
    CHECK(pagemap >= 0, "open pagemap: %s", strerror(errno));
    entries();
    shared_after_fork();
    file_page();
    sysctls();
    close(pagemap);
    return finish("proc_pagemap");
}
