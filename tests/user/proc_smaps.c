/*
 * /proc/self/smaps in Linux 6.1's format and with the address space's true
 * numbers: each mapping's maps line, then its sizes in the order Linux
 * prints them (Size, KernelPageSize, MMUPageSize, Rss, Pss, ..., Locked,
 * THPeligible, VmFlags); Rss counts the pages touched, a write makes a
 * private file page the program's own anonymous copy, locking shows in
 * Locked, VmFlags ("lo") and VmLck in /proc/self/status, MLOCK_ONFAULT
 * leaves pages out until touched, a forked child's untouched copies are
 * shared, and the flags name the rights, the stack's "gd" and "ac" for
 * private writable memory. Unlocking the middle of a locked mapping splits
 * it in maps, and unlocking the rest merges it again.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096UL
#define RW (PROT_READ | PROT_WRITE)

static char buffer[1 << 20];

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

/* The smaps entry of the mapping holding p: from its maps line to the
 * VmFlags line, copied into entry; 0 if none. */
static char entry[8192];
static int smaps_entry(const void *p) {
    const char *line = slurp("/proc/self/smaps");
    const char *found = NULL;
    while (*line) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if ((uintptr_t)p >= start && (uintptr_t)p < end) {
                found = line;
                break;
            }
        }
        line = strchr(line, '\n');
        if (!line)
            return 0;
        line++;
    }
    if (!found)
        return 0;
    const char *flags = strstr(found, "\nVmFlags:");
    if (!flags)
        return 0;
    const char *end = strchr(flags + 1, '\n');
    size_t len = (size_t)((end ? end + 1 : flags + strlen(flags)) - found);
    if (len >= sizeof entry)
        return 0;
    memcpy(entry, found, len);
    entry[len] = 0;
    return 1;
}

/* The value in kB of field name ("Rss") in the entry; -1 if missing. */
static long field(const char *name) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\n%s:", name);
    const char *at = strstr(entry, pattern);
    if (!at)
        return -1;
    return strtol(at + strlen(pattern), NULL, 10);
}

/* True if VmFlags names flag. */
static int has_flag(const char *flag) {
    const char *flags = strstr(entry, "\nVmFlags:");
    if (!flags)
        return 0;
    flags += strlen("\nVmFlags:");
    char word[4];
    int used = 0;
    while (sscanf(flags, " %3s%n", word, &used) == 1) {
        if (strcmp(word, flag) == 0)
            return 1;
        flags += used;
        if (*flags == '\n' || *flags == 0)
            break;
    }
    return 0;
}

/* The status line's value in kB ("VmLck"). */
static long status_kb(const char *name) {
    const char *status = slurp("/proc/self/status");
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\n%s:", name);
    const char *at = strstr(status, pattern);
    return at ? strtol(at + strlen(pattern), NULL, 10) : -1;
}

/* The start of the maps line holding p. */
static unsigned long maps_start(const void *p) {
    const char *line = slurp("/proc/self/maps");
    while (*line) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx", &start, &end) == 2 && (uintptr_t)p >= start && (uintptr_t)p < end)
            return start;
        line = strchr(line, '\n');
        if (!line)
            break;
        line++;
    }
    return 0;
}

/* The fields Linux 6.1 prints, in order (a newer kernel adds others between). */
static const char *const FIELDS[] = {
    "Size",           "KernelPageSize", "MMUPageSize",    "Rss",           "Pss",          "Pss_Dirty",
    "Shared_Clean",   "Shared_Dirty",   "Private_Clean",  "Private_Dirty", "Referenced",   "Anonymous",
    "LazyFree",       "AnonHugePages",  "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb",
    "Swap",           "SwapPss",        "Locked",         "THPeligible",   "VmFlags",
};

static void format(void) {
    char *a = mmap(NULL, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(smaps_entry(a) == 1, "smaps has the new mapping");
    char header[64];
    snprintf(header, sizeof header, "%08lx-%08lx rw-p 00000000 00:00 0 \n", (unsigned long)a,
             (unsigned long)a + 4 * PAGE);
    CHECK(strncmp(entry, header, strlen(header)) == 0, "its maps line first: %.60s", entry);
    const char *at = entry;
    for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
        char pattern[64];
        snprintf(pattern, sizeof pattern, "\n%s:", FIELDS[i]);
        const char *next = strstr(at, pattern);
        CHECK(next != NULL, "field %s present and in order", FIELDS[i]);
        if (next)
            at = next + 1;
    }
    CHECK(strstr(entry, "\nSize:                 16 kB\n") != NULL, "Size line's format");
    CHECK(strstr(entry, "\nPrivate_Hugetlb:       0 kB\n") != NULL, "Private_Hugetlb's width");
    CHECK(strstr(entry, "\nTHPeligible:    ") != NULL, "THPeligible's format");
    CHECK(field("KernelPageSize") == 4 && field("MMUPageSize") == 4, "4 kB pages");
    CHECK(field("Rss") == 0 && field("Pss") == 0 && field("Anonymous") == 0, "nothing resident yet (Rss %ld)",
          field("Rss"));
    CHECK(field("Swap") == 0 && field("Locked") == 0 && field("AnonHugePages") == 0, "no swap, lock, huge page");
    CHECK(has_flag("rd") && has_flag("wr") && !has_flag("ex") && has_flag("mr") && has_flag("mw") && has_flag("me") &&
              has_flag("ac") && !has_flag("lo") && !has_flag("gd") && !has_flag("sh"),
          "rw private flags: %s", strstr(entry, "VmFlags:"));

    a[0] = 1;
    a[2 * PAGE] = 1;
    CHECK(smaps_entry(a) == 1, "smaps again");
    CHECK(field("Rss") == 8 && field("Pss") == 8, "two pages touched: Rss %ld Pss %ld", field("Rss"), field("Pss"));
    CHECK(field("Private_Dirty") == 8 && field("Anonymous") == 8 && field("Shared_Dirty") == 0 &&
              field("Private_Clean") == 0,
          "private dirty anonymous pages (%ld %ld)", field("Private_Dirty"), field("Anonymous"));
    CHECK(field("Referenced") == 8, "referenced (%ld)", field("Referenced"));

    /* A read-only mapping: no "wr", no "ac". */
    mprotect(a, 4 * PAGE, PROT_READ);
    char *r = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(smaps_entry(r) == 1 && has_flag("rd") && !has_flag("wr") && !has_flag("ac") && has_flag("mw"),
          "read-only flags: %s", strstr(entry, "VmFlags:"));
    munmap(r, 2 * PAGE);
    munmap(a, 4 * PAGE);
    CHECK(smaps_entry(a) == 0, "unmapped: gone");

    /* The stack and the program's text. */
    int local = 0;
    CHECK(smaps_entry(&local) == 1 && has_flag("gd") && has_flag("wr") && strstr(entry, "[stack]") != NULL,
          "the stack grows down: %s", strstr(entry, "VmFlags:"));
    CHECK(field("Rss") > 0, "the stack is resident");
    CHECK(smaps_entry((void *)format) == 1 && has_flag("ex") && !has_flag("wr") && strstr(entry, "proc_smaps"),
          "the text: executable, named");
}

static long mlock2_(void *p, size_t len, int flags) {
    return syscall(SYS_mlock2, p, len, flags);
}

static void locked(void) {
    long before = status_kb("VmLck");
    CHECK(before == 0, "VmLck 0 to begin with (%ld)", before);
    char *a = mmap(NULL, 3 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mlock(a, 3 * PAGE) == 0, "mlock");
    CHECK(smaps_entry(a) == 1 && has_flag("lo"), "locked: lo");
    CHECK(field("Rss") == 12 && field("Locked") == 12, "locked pages resident: Rss %ld Locked %ld", field("Rss"),
          field("Locked"));
    CHECK(status_kb("VmLck") == 12, "VmLck 12 kB (%ld)", status_kb("VmLck"));

    /* Unlocking the middle page splits the mapping; the rest merges it. */
    unsigned long whole = maps_start(a);
    CHECK(whole == (unsigned long)a && maps_start(a + 2 * PAGE) == whole, "one mapping");
    CHECK(munlock(a + PAGE, PAGE) == 0, "munlock the middle");
    CHECK(maps_start(a) != maps_start(a + PAGE) && maps_start(a + PAGE) != maps_start(a + 2 * PAGE),
          "three mappings");
    CHECK(smaps_entry(a + PAGE) == 1 && !has_flag("lo") && field("Locked") == 0 && field("Rss") == 4,
          "the middle: unlocked, still resident");
    CHECK(status_kb("VmLck") == 8, "VmLck 8 kB (%ld)", status_kb("VmLck"));
    CHECK(munlock(a, 3 * PAGE) == 0, "munlock all");
    CHECK(maps_start(a) == maps_start(a + 2 * PAGE) && maps_start(a + PAGE) == maps_start(a), "one mapping again");
    CHECK(status_kb("VmLck") == 0, "VmLck 0 again");
    munmap(a, 3 * PAGE);

    /* MLOCK_ONFAULT: locked, only the touched page resident. */
    char *b = mmap(NULL, 4 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mlock2_(b, 4 * PAGE, MLOCK_ONFAULT) == 0, "mlock2 ONFAULT");
    b[PAGE] = 1;
    CHECK(smaps_entry(b) == 1 && has_flag("lo") && field("Rss") == 4 && field("Size") == 16 && field("Locked") == 4,
          "lock on fault: Rss %ld Locked %ld", field("Rss"), field("Locked"));
    CHECK(status_kb("VmLck") == 16, "VmLck counts the whole locked mapping (%ld)", status_kb("VmLck"));
    munmap(b, 4 * PAGE);
    CHECK(status_kb("VmLck") == 0, "unmapped: VmLck 0");
}

static void file_pages(void) {
    int fd = open("/proc/self/exe", O_RDONLY);
    CHECK(fd >= 0, "open the program");
    char *f = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE, fd, 0);
    CHECK(f != MAP_FAILED, "private file mapping");
    volatile char c = f[0];
    (void)c;
    /* (Linux maps the file's neighbouring pages too: Rss may be 8.) */
    CHECK(smaps_entry(f) == 1 && field("Rss") >= 4 && field("Anonymous") == 0 && field("Private_Dirty") == 0,
          "a page read: the file's, clean (Rss %ld Anonymous %ld)", field("Rss"), field("Anonymous"));
    CHECK(strstr(entry, "proc_smaps") != NULL, "named after the file");
    f[PAGE] = 1;
    CHECK(smaps_entry(f) == 1 && field("Rss") == 8 && field("Anonymous") == 4 && field("Private_Dirty") == 4,
          "a page written: the program's own copy (Anonymous %ld Private_Dirty %ld)", field("Anonymous"),
          field("Private_Dirty"));
    munmap(f, 2 * PAGE);

    char *s = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(s != MAP_FAILED, "shared file mapping");
    CHECK(smaps_entry(s) == 1 && strstr(entry, " r--s ") != NULL && has_flag("ms") && !has_flag("mw") &&
              !has_flag("sh"),
          "a shared mapping of a file opened read-only: ms, no mw, no sh: %s", strstr(entry, "VmFlags:"));
    munmap(s, PAGE);
    close(fd);
}

static void forked(void) {
    char *a = mmap(NULL, 2 * PAGE, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    a[0] = 1;
    a[PAGE] = 1;
    pid_t child = fork();
    if (child == 0) {
        /* Both pages are still the parent's frames, shared. */
        int ok = smaps_entry(a) == 1 && field("Rss") == 8 && field("Shared_Dirty") == 8 && field("Private_Dirty") == 0 &&
                 field("Pss") < 8;
        a[0] = 2; /* copies the page: now the child's own */
        ok = ok && smaps_entry(a) == 1 && field("Private_Dirty") == 4 && field("Shared_Dirty") == 4;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw shared, then private pages (%#x)", status);
    munmap(a, 2 * PAGE);
}

int main(void) {
    format();
    locked();
    file_pages();
    forked();
    return finish("proc_smaps");
}
