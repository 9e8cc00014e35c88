/*
 * /proc/self/maps tells the truth about the address space, in Linux's
 * format: the program's segments with their rights and file, the heap, the
 * stack; a new mapping appears with its rights and goes when unmapped.
 * /proc/self/status and /proc/meminfo have their memory lines.
 */
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static char buffer[65536];

static const char *slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return "";
    size_t used = 0;
    ssize_t got;
    while ((got = read(fd, buffer + used, sizeof buffer - 1 - used)) > 0)
        used += (size_t)got;
    buffer[used] = 0;
    close(fd);
    return buffer;
}

/* The line of maps that holds address p, parsed; 0 if none. */
static int find(uintptr_t p, char rights[5], char name[256]) {
    const char *maps = slurp("/proc/self/maps");
    const char *line = maps;
    while (*line) {
        unsigned long start, end, offset, inode;
        unsigned major, minor;
        int used = 0;
        name[0] = 0;
        if (sscanf(line, "%lx-%lx %4s %lx %x:%x %lu%n", &start, &end, rights, &offset, &major, &minor, &inode, &used) < 7)
            return -1;
        const char *rest = line + used;
        while (*rest == ' ')
            rest++;
        sscanf(rest, "%255[^\n]", name);
        if (p >= start && p < end)
            return 1;
        line = strchr(line, '\n');
        if (!line)
            break;
        line++;
    }
    return 0;
}

static int main_marker;

int main(void) {
    char rights[5], name[256];
    CHECK(find((uintptr_t)main, rights, name) == 1, "main's page is listed");
    CHECK(strcmp(rights, "r-xp") == 0, "text is r-xp (%s)", rights);
    CHECK(strstr(name, "procfs") != NULL, "text names the program file (%s)", name);
    CHECK(find((uintptr_t)&main_marker, rights, name) == 1 && strcmp(rights, "rw-p") == 0, "data/bss is rw-p (%s)",
          rights);
    int on_stack;
    CHECK(find((uintptr_t)&on_stack, rights, name) == 1 && strcmp(rights, "rw-p") == 0 && strcmp(name, "[stack]") == 0,
          "the stack is rw-p [stack] (%s %s)", rights, name);
    char *heap = sbrk(0);
    sbrk(8192);
    heap[100] = 1;
    CHECK(find((uintptr_t)heap + 100, rights, name) == 1 && strcmp(name, "[heap]") == 0, "the heap is [heap] (%s)", name);

    char *m = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    CHECK(find((uintptr_t)m + 4096, rights, name) == 1 && strcmp(rights, "r--p") == 0 && name[0] == 0,
          "a new read-only anonymous mapping: r--p, no name (%s '%s')", rights, name);
    mprotect(m + 4096, 4096, PROT_READ | PROT_WRITE);
    CHECK(find((uintptr_t)m + 4096, rights, name) == 1 && strcmp(rights, "rw-p") == 0, "mprotect shows (%s)", rights);
    munmap(m, 3 * 4096);
    CHECK(find((uintptr_t)m + 4096, rights, name) == 0, "munmap removes the line");

    /* Format: an anonymous line ends with a space after the inode, as Linux prints it. */
    const char *maps = slurp("/proc/self/maps");
    CHECK(strstr(maps, " 0 \n") != NULL || strstr(maps, "[") != NULL, "anonymous lines end '0 '");

    const char *status = slurp("/proc/self/status");
    CHECK(strstr(status, "VmRSS:") != NULL && strstr(status, "VmSize:") != NULL, "status has VmRSS and VmSize");
    long rss = -1;
    const char *at = strstr(status, "VmRSS:");
    if (at)
        rss = strtol(at + 6, NULL, 10);
    CHECK(rss > 0, "VmRSS is positive (%ld kB)", rss);

    const char *meminfo = slurp("/proc/meminfo");
    long total = -1, free_kb = -1;
    sscanf(meminfo, "MemTotal: %ld kB\nMemFree: %ld kB", &total, &free_kb);
    CHECK(total > 0 && free_kb > 0 && free_kb <= total, "meminfo MemTotal %ld MemFree %ld", total, free_kb);
    return finish("procfs");
}
