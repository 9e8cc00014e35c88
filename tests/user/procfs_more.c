/*
 * The /dev, /proc and /sys files test harnesses read, checked by their
 * formats and by how they relate to what the system calls say, never by
 * values that differ between machines:
 *
 * - /dev/null reads end of file and swallows writes, /dev/zero reads zeros,
 *   /dev/urandom and /dev/random give bytes (64 not all zero); each is a
 *   character device with Linux's numbers and crw-rw-rw-, listed in /dev
 *   as DT_CHR with the inode stat shows; lseek on them returns 0; pread
 *   and pwrite work; access(W_OK) is allowed.
 * - /proc/self/stat: 52 fields; pid, comm, state R, ppid, pgrp, session,
 *   the thread count and the exit signal agree with the calls; vsize and
 *   rss are not zero; a blocked, an ignored and a caught signal show in
 *   their masks; a child started later has a start time no earlier.
 * - /proc/interrupts has a column per CPU and a TLB row.
 * - another process's /proc/PID (a child's stat, status, cmdline, exe,
 *   maps), listed in /proc, gone once reaped.
 * - /proc/self/cmdline is argv, each followed by a NUL; /proc/PID/ is the
 *   same as /proc/self/.
 * - /proc/self/fd lists the open descriptors as links; readlink gives the
 *   path of a file (" (deleted)" once unlinked), pipe:[INO] with the
 *   pipe's inode, /dev/null; stat through a link is the file's; a closed
 *   descriptor's link is gone.
 * - /proc/self/oom_score_adj reads a number in -1000..1000, takes a new
 *   one (kept across fork) and refuses one out of range or not a number.
 * - /proc/self/mounts and /proc/mounts list proc at /proc and sysfs at
 *   /sys in six fields a line; /proc/cpuinfo has a block per CPU with
 *   processor, vendor_id, model name and flags; the sysctls pid_max,
 *   core_pattern and overcommit_memory read as Linux formats them.
 * - /sys/devices/system/cpu/online parses as a CPU list whose count is
 *   sysconf(_SC_NPROCESSORS_ONLN), possible holds at least as many; the
 *   transparent huge page policy has one bracketed choice of three; the
 *   directories list their entries.
 */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static char buffer[65536];

/* Reads all of `path` into buffer (NUL-terminated); its length, or -1. */
static long slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t used = 0;
    ssize_t got;
    while (used < sizeof buffer - 1 && (got = read(fd, buffer + used, sizeof buffer - 1 - used)) > 0)
        used += (size_t)got;
    buffer[used] = 0;
    close(fd);
    return (long)used;
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Finds `want` in directory `path` with getdents64: 1 and its type and
   inode when found, 0 when not, -1 on an error. */
static int find_entry(const char *path, const char *want, unsigned char *type, uint64_t *ino) {
    char buf[4096];
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int found = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0)
                found = -1;
            break;
        }
        for (long at = 0; at < n;) {
            struct linux_dirent64 *entry = (struct linux_dirent64 *)(buf + at);
            if (strcmp(entry->d_name, want) == 0) {
                found = 1;
                *type = entry->d_type;
                *ino = entry->d_ino;
            }
            at += entry->d_reclen;
        }
    }
    close(fd);
    return found;
}

static void device(const char *path, unsigned major_number, unsigned minor_number) {
    struct stat st;
    CHECK(stat(path, &st) == 0, "stat %s", path);
    CHECK(S_ISCHR(st.st_mode), "%s is a character device (%o)", path, st.st_mode);
    CHECK(major(st.st_rdev) == major_number && minor(st.st_rdev) == minor_number, "%s is %u:%u (%u:%u)", path,
          major_number, minor_number, major(st.st_rdev), minor(st.st_rdev));
    CHECK((st.st_mode & 0777) == 0666, "%s is crw-rw-rw- (%o)", path, st.st_mode & 0777);
    unsigned char type = 0;
    uint64_t ino = 0;
    CHECK(find_entry("/dev", strrchr(path, '/') + 1, &type, &ino) == 1, "%s is listed in /dev", path);
    CHECK(type == DT_CHR && ino == st.st_ino, "%s: DT_CHR and its inode (type %u, ino %llu vs %llu)", path, type,
          (unsigned long long)ino, (unsigned long long)st.st_ino);
    CHECK(access(path, R_OK | W_OK) == 0, "access(%s, R_OK | W_OK)", path);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0, "open %s O_RDWR", path);
    struct stat fst;
    CHECK(fstat(fd, &fst) == 0 && fst.st_rdev == st.st_rdev && S_ISCHR(fst.st_mode), "fstat %s", path);
    CHECK(write(fd, "hello", 5) == 5, "a write to %s is swallowed", path);
    CHECK(pwrite(fd, "hello", 5, 100) == 5, "pwrite to %s", path);
    CHECK(lseek(fd, 100, SEEK_SET) == 0, "lseek on %s returns 0", path);
    CHECK(lseek(fd, 0, SEEK_END) == 0, "lseek SEEK_END on %s returns 0", path);
    close(fd);
}

static void devices(void) {
    device("/dev/null", 1, 3);
    device("/dev/zero", 1, 5);
    device("/dev/random", 1, 8);
    device("/dev/urandom", 1, 9);

    int fd = open("/dev/null", O_RDONLY);
    char bytes[4096];
    CHECK(read(fd, bytes, sizeof bytes) == 0, "/dev/null reads end of file");
    CHECK(pread(fd, bytes, sizeof bytes, 10) == 0, "pread of /dev/null: end of file");
    close(fd);
    fd = open("/dev/null", O_WRONLY);
    CHECK(fd >= 0 && write(fd, bytes, sizeof bytes) == sizeof bytes, "/dev/null O_WRONLY takes a page");
    close(fd);

    fd = open("/dev/zero", O_RDONLY);
    memset(bytes, 0xaa, sizeof bytes);
    CHECK(read(fd, bytes, sizeof bytes) == sizeof bytes, "/dev/zero reads a page");
    int zeros = 1;
    for (size_t i = 0; i < sizeof bytes; i++)
        zeros &= bytes[i] == 0;
    CHECK(zeros, "/dev/zero reads zeros");
    memset(bytes, 0xaa, 100);
    CHECK(pread(fd, bytes, 100, 5000) == 100 && bytes[0] == 0 && bytes[99] == 0, "pread of /dev/zero");
    CHECK(syscall(SYS_read, fd, (void *)16, 10) == -1 && errno == EFAULT, "a read of /dev/zero into no memory: EFAULT");
    close(fd);

    unsigned char random[64] = {0};
    fd = open("/dev/urandom", O_RDONLY);
    CHECK(read(fd, random, sizeof random) == sizeof random, "/dev/urandom gives 64 bytes");
    int nonzero = 0;
    for (size_t i = 0; i < sizeof random; i++)
        nonzero |= random[i];
    CHECK(nonzero, "not all zero");
    close(fd);
    fd = open("/dev/random", O_RDONLY);
    CHECK(read(fd, random, 16) == 16, "/dev/random gives 16 bytes");
    close(fd);

    struct stat st;
    if (stat("/dev/tty", &st) == 0)
        CHECK(S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 && minor(st.st_rdev) == 0, "/dev/tty is 5:0");
}

/* The fields of /proc/self/stat after "(comm)", from field 3 (state);
   comm copied to `comm`. The number of fields, or -1. */
static int stat_fields(const char *path, char comm[64], char fields[64][32]) {
    if (slurp(path) <= 0)
        return -1;
    char *open_paren = strchr(buffer, '(');
    char *close_paren = strrchr(buffer, ')');
    if (!open_paren || !close_paren || close_paren < open_paren)
        return -1;
    size_t length = (size_t)(close_paren - open_paren - 1);
    if (length > 63)
        length = 63;
    memcpy(comm, open_paren + 1, length);
    comm[length] = 0;
    int count = 2;
    char *rest = close_paren + 1;
    char *token;
    while ((token = strtok_r(rest, " \n", &rest)) != NULL && count < 64 + 2) {
        snprintf(fields[count - 2], 32, "%s", token);
        count++;
    }
    return count;
}

#define FIELD(n) (fields[(n)-3])

static void proc_stat(char **argv) {
    char comm[64], fields[64][32];
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGALRM, SIG_IGN);
    signal(SIGUSR2, (void (*)(int))abort);
    int count = stat_fields("/proc/self/stat", comm, fields);
    CHECK(count >= 52, "/proc/self/stat has at least 52 fields (%d)", count);
    if (count < 52)
        return;
    long pid = atol(buffer);
    CHECK(pid == getpid(), "the pid (%ld)", pid);
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    CHECK(strncmp(comm, name, 15) == 0 && strlen(comm) <= 15, "comm is the program's name (%s, %s)", comm, name);
    CHECK(strcmp(FIELD(3), "R") == 0, "state R while reading (%s)", FIELD(3));
    CHECK(atol(FIELD(4)) == getppid(), "ppid (%s, %d)", FIELD(4), getppid());
    CHECK(atol(FIELD(5)) == getpgrp(), "pgrp (%s, %d)", FIELD(5), getpgrp());
    CHECK(atol(FIELD(6)) == getsid(0), "session (%s, %d)", FIELD(6), getsid(0));
    CHECK(atol(FIELD(20)) == 1, "one thread (%s)", FIELD(20));
    CHECK(strtoull(FIELD(23), NULL, 10) > 0, "vsize (%s)", FIELD(23));
    CHECK(strtoull(FIELD(24), NULL, 10) > 0, "rss (%s)", FIELD(24));
    unsigned long long blocked = strtoull(FIELD(32), NULL, 10);
    unsigned long long ignored = strtoull(FIELD(33), NULL, 10);
    unsigned long long caught = strtoull(FIELD(34), NULL, 10);
    CHECK(blocked & (1ull << (SIGUSR1 - 1)), "SIGUSR1 blocked (%llx)", blocked);
    CHECK(ignored & (1ull << (SIGALRM - 1)), "SIGALRM ignored (%llx)", ignored);
    CHECK(caught & (1ull << (SIGUSR2 - 1)), "SIGUSR2 caught (%llx)", caught);
    CHECK(!(caught & (1ull << (SIGALRM - 1))) && !(ignored & (1ull << (SIGUSR2 - 1))), "not both");
    CHECK(atol(FIELD(38)) == SIGCHLD, "exit signal SIGCHLD (%s)", FIELD(38));
    long cpu = atol(FIELD(39));
    CHECK(cpu >= 0 && cpu < sysconf(_SC_NPROCESSORS_CONF), "the CPU (%ld)", cpu);
    unsigned long long start = strtoull(FIELD(22), NULL, 10);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    signal(SIGALRM, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);

    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", getpid());
    char comm2[64];
    CHECK(stat_fields(path, comm2, fields) >= 52 && atol(buffer) == getpid() && strcmp(comm, comm2) == 0,
          "/proc/PID/stat is the same process");

    int pipefd[2];
    pipe(pipefd);
    pid_t child = fork();
    if (child == 0) {
        char child_comm[64], child_fields[64][32];
        unsigned long long child_start = 0;
        int ok = stat_fields("/proc/self/stat", child_comm, child_fields) >= 52 && atol(buffer) == getpid();
        if (ok)
            child_start = strtoull(child_fields[22 - 3], NULL, 10);
        ok = ok && atol(child_fields[4 - 3]) == getppid();
        write(pipefd[1], &ok, sizeof ok);
        write(pipefd[1], &child_start, sizeof child_start);
        _exit(0);
    }
    int ok = 0;
    unsigned long long child_start = 0;
    read(pipefd[0], &ok, sizeof ok);
    read(pipefd[0], &child_start, sizeof child_start);
    waitpid(child, NULL, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK(ok, "a child's stat has its pid and its parent");
    CHECK(child_start >= start, "a child starts no earlier (%llu, %llu)", child_start, start);
}

static void cmdline(int argc, char **argv) {
    char expected[4096];
    size_t length = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        memcpy(expected + length, argv[i], n);
        length += n;
    }
    long got = slurp("/proc/self/cmdline");
    CHECK(got == (long)length && memcmp(buffer, expected, length) == 0, "cmdline is argv (%ld bytes, %zu)", got,
          length);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", getpid());
    got = slurp(path);
    CHECK(got == (long)length && memcmp(buffer, expected, length) == 0, "/proc/PID/cmdline too");
}

static void fd_links(void) {
    const char *name = "/tmp/procfs_more.fd";
    unlink(name);
    int file = open(name, O_CREAT | O_RDWR | O_TRUNC, 0600);
    CHECK(file >= 0, "create %s", name);
    write(file, "contents", 8);
    int null = open("/dev/null", O_WRONLY);
    int pipes[2];
    CHECK(pipe(pipes) == 0, "pipe");

    char path[64], target[256];
    unsigned char type = 0;
    uint64_t ino = 0;
    snprintf(path, sizeof path, "%d", file);
    CHECK(find_entry("/proc/self/fd", path, &type, &ino) == 1 && type == DT_LNK, "/proc/self/fd lists %d as a link",
          file);
    snprintf(path, sizeof path, "%d", pipes[1]);
    CHECK(find_entry("/proc/self/fd", path, &type, &ino) == 1, "and the pipe's end %d", pipes[1]);
    CHECK(find_entry("/proc/self/fd", "0", &type, &ino) == 1 || fcntl(0, F_GETFD) == -1, "and 0 when open");

    snprintf(path, sizeof path, "/proc/self/fd/%d", file);
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    CHECK(strcmp(target, name) == 0, "readlink %s: %s", path, target);
    struct stat link, through, direct;
    CHECK(lstat(path, &link) == 0 && S_ISLNK(link.st_mode), "lstat: a link (%o)", link.st_mode);
    CHECK((link.st_mode & 0700) == 0700, "opened read-write: lrwx (%o)", link.st_mode & 0777);
    CHECK(stat(path, &through) == 0 && fstat(file, &direct) == 0 && through.st_ino == direct.st_ino &&
              through.st_dev == direct.st_dev && S_ISREG(through.st_mode),
          "stat through the link is the file's");
    int again = open(path, O_RDONLY);
    char contents[16] = {0};
    CHECK(again >= 0 && read(again, contents, sizeof contents) == 8 && memcmp(contents, "contents", 8) == 0,
          "opening the link opens the file");
    close(again);

    snprintf(path, sizeof path, "/proc/self/fd/%d", null);
    n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    CHECK(strcmp(target, "/dev/null") == 0, "readlink of /dev/null's descriptor: %s", target);
    CHECK(lstat(path, &link) == 0 && (link.st_mode & 0777) == 0300, "opened write-only: l-wx (%o)",
          link.st_mode & 0777);
    CHECK(stat(path, &through) == 0 && S_ISCHR(through.st_mode) && major(through.st_rdev) == 1 &&
              minor(through.st_rdev) == 3,
          "stat through it is /dev/null");

    snprintf(path, sizeof path, "/proc/self/fd/%d", pipes[0]);
    n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    CHECK(fstat(pipes[0], &direct) == 0, "fstat pipe");
    char expected[64];
    snprintf(expected, sizeof expected, "pipe:[%llu]", (unsigned long long)direct.st_ino);
    CHECK(strcmp(target, expected) == 0, "readlink of a pipe: %s (%s)", target, expected);

    unlink(name);
    snprintf(path, sizeof path, "/proc/self/fd/%d", file);
    n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    snprintf(expected, sizeof expected, "%s (deleted)", name);
    CHECK(strcmp(target, expected) == 0, "an unlinked file: %s", target);

    close(file);
    CHECK_ERR(readlink(path, target, sizeof target), ENOENT);
    CHECK_ERR(open(path, O_RDONLY), ENOENT);
    close(null);
    close(pipes[0]);
    close(pipes[1]);
    struct stat st;
    CHECK(stat("/proc/self/fd", &st) == 0 && S_ISDIR(st.st_mode), "/proc/self/fd is a directory");
}

static void oom_score_adj(void) {
    long got = slurp("/proc/self/oom_score_adj");
    char *end;
    long value = strtol(buffer, &end, 10);
    CHECK(got > 0 && *end == '\n' && value >= -1000 && value <= 1000, "oom_score_adj reads a number (%s)", buffer);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    CHECK(fd >= 0, "open oom_score_adj for writing");
    CHECK(write(fd, "500\n", 4) == 4, "write 500");
    slurp("/proc/self/oom_score_adj");
    CHECK(strcmp(buffer, "500\n") == 0, "reads back 500 (%s)", buffer);
    CHECK_ERR(write(fd, "1001", 4), EINVAL);
    CHECK_ERR(write(fd, "many", 4), EINVAL);
    CHECK_ERR(write(fd, "", 0), EINVAL);
    int pipefd[2];
    pipe(pipefd);
    pid_t child = fork();
    if (child == 0) {
        slurp("/proc/self/oom_score_adj");
        char ok = strcmp(buffer, "500\n") == 0;
        write(pipefd[1], &ok, 1);
        _exit(0);
    }
    char ok = 0;
    read(pipefd[0], &ok, 1);
    waitpid(child, NULL, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK(ok, "a forked child keeps it");
    CHECK(write(fd, "0x10", 4) == 4, "a number in hexadecimal");
    slurp("/proc/self/oom_score_adj");
    CHECK(strcmp(buffer, "16\n") == 0, "reads back 16 (%s)", buffer);
    char previous[32];
    snprintf(previous, sizeof previous, "%ld", value);
    write(fd, previous, strlen(previous));
    close(fd);
}

/* True when `text` has a line whose first three fields are these. */
static int has_mount(const char *text, const char *point, const char *kind) {
    const char *line = text;
    while (*line) {
        char source[256], at[256], type[64], options[512];
        int dump, pass;
        if (sscanf(line, "%255s %255s %63s %511s %d %d", source, at, type, options, &dump, &pass) != 6)
            return 0;
        if (strcmp(at, point) == 0 && strcmp(type, kind) == 0)
            return 1;
        line = strchr(line, '\n');
        if (!line)
            break;
        line++;
    }
    return 0;
}

static void mounts(void) {
    CHECK(slurp("/proc/self/mounts") > 0, "/proc/self/mounts");
    CHECK(has_mount(buffer, "/proc", "proc"), "proc at /proc, in six fields a line");
    CHECK(has_mount(buffer, "/sys", "sysfs"), "sysfs at /sys");
    CHECK(slurp("/proc/mounts") > 0 && has_mount(buffer, "/proc", "proc"), "/proc/mounts");
}

static void cpuinfo(void) {
    CHECK(slurp("/proc/cpuinfo") > 0, "/proc/cpuinfo");
    int processors = 0, vendors = 0, names = 0, flags = 0;
    for (char *line = buffer; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        processors += strncmp(line, "processor\t:", 11) == 0;
        vendors += strncmp(line, "vendor_id\t:", 11) == 0;
        names += strncmp(line, "model name\t:", 12) == 0;
        if (strncmp(line, "flags\t\t:", 8) == 0) {
            char *end = strchr(line, '\n');
            if (end)
                *end = 0;
            flags += strstr(line, " fpu") != NULL;
            if (end)
                *end = '\n';
        }
    }
    CHECK(processors >= 1, "a processor line at least (%d)", processors);
    CHECK(vendors == processors && names == processors && flags == processors,
          "each with vendor_id, model name and flags with fpu (%d %d %d %d)", processors, vendors, names, flags);
}

/* Counts the CPUs of a CPU list ("0-3,5\n"); -1 when it does not parse. */
static int cpu_count(const char *list) {
    int count = 0;
    const char *p = list;
    for (;;) {
        char *end;
        long first = strtol(p, &end, 10);
        if (end == p || first < 0)
            return -1;
        long last = first;
        p = end;
        if (*p == '-') {
            p++;
            last = strtol(p, &end, 10);
            if (end == p || last < first)
                return -1;
            p = end;
        }
        count += (int)(last - first + 1);
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '\n' && p[1] == 0 ? count : -1;
    }
}

static void sysfs(void) {
    CHECK(slurp("/sys/devices/system/cpu/online") > 0, "/sys/devices/system/cpu/online");
    int online = cpu_count(buffer);
    CHECK(online == sysconf(_SC_NPROCESSORS_ONLN), "online parses (%s) and counts the online CPUs (%d, %ld)", buffer,
          online, sysconf(_SC_NPROCESSORS_ONLN));
    CHECK(slurp("/sys/devices/system/cpu/possible") > 0, "possible");
    int possible = cpu_count(buffer);
    CHECK(possible >= online, "possible parses (%s) and holds the online CPUs", buffer);

    CHECK(slurp("/sys/kernel/mm/transparent_hugepage/enabled") > 0, "transparent_hugepage/enabled");
    int brackets = 0;
    for (char *p = buffer; *p; p++)
        brackets += *p == '[';
    CHECK(brackets == 1 && strstr(buffer, "always") && strstr(buffer, "madvise") && strstr(buffer, "never") &&
              strchr(buffer, '\n') == buffer + strlen(buffer) - 1,
          "one choice of always, madvise, never in brackets (%s)", buffer);

    unsigned char type = 0;
    uint64_t ino = 0;
    CHECK(find_entry("/sys/devices/system/cpu", "online", &type, &ino) == 1 && type == DT_REG, "cpu/ lists online");
    CHECK(find_entry("/sys/devices/system/cpu", "cpu0", &type, &ino) == 1 && type == DT_DIR, "and cpu0");
    CHECK(find_entry("/sys", "devices", &type, &ino) == 1 && type == DT_DIR, "/sys lists devices");
    CHECK(find_entry("/sys/kernel/mm", "transparent_hugepage", &type, &ino) == 1 && type == DT_DIR,
          "/sys/kernel/mm lists transparent_hugepage");
    struct stat st;
    CHECK(stat("/sys/devices/system/cpu/online", &st) == 0 && S_ISREG(st.st_mode), "online is a file");
    CHECK(stat("/sys", &st) == 0 && S_ISDIR(st.st_mode), "/sys is a directory");
    CHECK_ERR(open("/sys/devices/system/cpu/nothing", O_RDONLY), ENOENT);
}

static void sysctls(void) {
    CHECK(slurp("/proc/sys/kernel/pid_max") > 0, "pid_max");
    char *end;
    long pid_max = strtol(buffer, &end, 10);
    CHECK(*end == '\n' && pid_max > getpid() && pid_max >= 301, "pid_max is a number above the pid (%s)", buffer);
    long length = slurp("/proc/sys/kernel/core_pattern");
    CHECK(length > 1 && buffer[length - 1] == '\n', "core_pattern is a line (%s)", buffer);
    CHECK(slurp("/proc/sys/vm/overcommit_memory") == 2 && buffer[0] >= '0' && buffer[0] <= '2' && buffer[1] == '\n',
          "overcommit_memory is 0, 1 or 2 (%s)", buffer);
    unsigned char type = 0;
    uint64_t ino = 0;
    CHECK(find_entry("/proc/sys/kernel", "pid_max", &type, &ino) == 1 && type == DT_REG, "kernel/ lists pid_max");
    CHECK(find_entry("/proc/self", "stat", &type, &ino) == 1 && type == DT_REG, "/proc/self lists stat");
    CHECK(find_entry("/proc/self", "fd", &type, &ino) == 1 && type == DT_DIR, "and fd");
    CHECK(find_entry("/proc", "cpuinfo", &type, &ino) == 1 && type == DT_REG, "/proc lists cpuinfo");
}

/* /proc/interrupts: a header with one CPUn column per online CPU, and a
   TLB row (shootdowns received) with a count per column. */
static void interrupts(void) {
    CHECK(slurp("/proc/interrupts") > 0, "/proc/interrupts");
    int columns = 0;
    for (char *at = buffer; *at && *at != '\n'; at++)
        columns += at[0] == 'C' && at[1] == 'P' && at[2] == 'U';
    CHECK(columns == sysconf(_SC_NPROCESSORS_ONLN), "a column per CPU (%d)", columns);
    char *tlb = strstr(buffer, "\nTLB:");
    int counts = 0;
    if (tlb) {
        char *at = tlb + 5;
        for (int i = 0; i < columns; i++) {
            char *end;
            strtoul(at, &end, 10);
            counts += end != at;
            at = end;
        }
    }
    CHECK(tlb && counts == columns, "a TLB row with a count per CPU (%d)", counts);
}

/* Another process's /proc/PID: a child's stat, status, cmdline, exe and
   maps, and its entry in /proc; gone once it is reaped. */
static void other_process(void) {
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    if (child == 0) {
        close(ready[0]);
        if (write(ready[1], "r", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c;
    close(ready[1]);
    CHECK(read(ready[0], &c, 1) == 1, "the child runs");
    close(ready[0]);
    char path[64], want[64];
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    long pid = -1, ppid = -1;
    CHECK(slurp(path) > 0, "%s", path);
    char *after = strrchr(buffer, ')');
    pid = strtol(buffer, NULL, 10);
    if (after)
        ppid = strtol(after + 4, NULL, 10);
    CHECK(pid == child && ppid == getpid(), "its stat: pid %ld, ppid %ld", pid, ppid);
    snprintf(path, sizeof path, "/proc/%d/status", child);
    snprintf(want, sizeof want, "\nPid:\t%d\n", child);
    CHECK(slurp(path) > 0 && strstr(buffer, want), "its status names its pid");
    snprintf(path, sizeof path, "/proc/%d/cmdline", child);
    char theirs[4096], mine[4096];
    long n = slurp(path);
    memcpy(theirs, buffer, n > 0 ? (size_t)n : 0);
    long m = slurp("/proc/self/cmdline");
    memcpy(mine, buffer, m > 0 ? (size_t)m : 0);
    CHECK(n > 0 && n == m && !memcmp(theirs, mine, (size_t)n), "its cmdline, as a forked copy, is ours");
    char exe_theirs[256] = {0}, exe_mine[256] = {0};
    snprintf(path, sizeof path, "/proc/%d/exe", child);
    CHECK(readlink(path, exe_theirs, sizeof exe_theirs - 1) > 0 &&
              readlink("/proc/self/exe", exe_mine, sizeof exe_mine - 1) > 0 && !strcmp(exe_theirs, exe_mine),
          "its exe: %s", exe_theirs);
    snprintf(path, sizeof path, "/proc/%d/maps", child);
    CHECK(slurp(path) > 0 && strstr(buffer, "[stack]"), "its maps");
    DIR *dir = opendir("/proc");
    int listed = 0;
    struct dirent *entry;
    snprintf(want, sizeof want, "%d", child);
    while (dir && (entry = readdir(dir)))
        listed |= !strcmp(entry->d_name, want);
    if (dir)
        closedir(dir);
    CHECK(listed, "/proc lists it");
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    snprintf(path, sizeof path, "/proc/%d/status", child);
    CHECK_ERR(open(path, O_RDONLY), ENOENT);
}

int main(int argc, char **argv) {
    devices();
    proc_stat(argv);
    cmdline(argc, argv);
    fd_links();
    oom_score_adj();
    mounts();
    cpuinfo();
    sysfs();
    sysctls();
    interrupts();
    other_process();
    return finish("procfs_more");
}
