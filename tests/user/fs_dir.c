/*
 * Directories and file status: open on directories, getdents64 on /,
 * /proc and /proc/self, openat relative to a directory descriptor,
 * O_PATH handles, stat/lstat/newfstatat and statx (with AT_EMPTY_PATH and
 * the mask), readlink, access; ioctl on the console and on other files
 * (the harness may give a pipe or /dev/null for 0, 1 and 2 on Linux: both
 * answers are accepted there, and checked when they are a terminal's).
 */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Lists directory `fd` with getdents64 through a buffer of `size` bytes;
   finds `want`: its type and inode; counts the entries. */
static int find_entry(int fd, size_t size, const char *want, unsigned char *type, uint64_t *ino, int *count) {
    char buf[4096];
    int found = 0;
    *count = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, size);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        for (long at = 0; at < n;) {
            struct linux_dirent64 *entry = (struct linux_dirent64 *)(buf + at);
            if (strcmp(entry->d_name, want) == 0) {
                found = 1;
                *type = entry->d_type;
                *ino = entry->d_ino;
            }
            (*count)++;
            at += entry->d_reclen;
        }
    }
    return found;
}

static void directories(void) {
    unsigned char type = 0;
    uint64_t ino = 0;
    int count = 0;
    struct stat st;

    int root = open("/", O_RDONLY | O_DIRECTORY);
    CHECK(root >= 0, "open / O_DIRECTORY");
    CHECK(fstat(root, &st) == 0 && S_ISDIR(st.st_mode), "fstat /: a directory");
    CHECK(find_entry(root, 4096, "proc", &type, &ino, &count) == 1 && type == DT_DIR, "/ lists proc, a directory");
    CHECK(lseek(root, 0, SEEK_SET) == 0, "rewind /");
    CHECK(find_entry(root, 4096, ".", &type, &ino, &count) == 1 && type == DT_DIR && ino == st.st_ino,
          "/ lists . with its own inode");
    CHECK(lseek(root, 0, SEEK_SET) == 0, "rewind /");
    CHECK(find_entry(root, 4096, "bin", &type, &ino, &count) == 1, "/ lists bin");
    /* Through a buffer that holds one entry at a time: the same listing. */
    int small_count = 0;
    CHECK(lseek(root, 0, SEEK_SET) == 0, "rewind /");
    CHECK(find_entry(root, 40, "proc", &type, &ino, &small_count) == 1 && small_count == count,
          "a small buffer lists the same %d entries (%d)", count, small_count);
    char tiny[8];
    CHECK(lseek(root, 0, SEEK_SET) == 0, "rewind /");
    CHECK_ERR(syscall(SYS_getdents64, root, tiny, sizeof tiny), EINVAL);
    CHECK_ERR(syscall(SYS_getdents64, root, (void *)16, 4096), EFAULT);
    CHECK_ERR(syscall(SYS_getdents64, 1000000, tiny, sizeof tiny), EBADF);
    char buf[64];
    CHECK_ERR(read(root, buf, sizeof buf), EISDIR);
    CHECK_ERR(pread(root, buf, sizeof buf, 0), EISDIR);
    CHECK_ERR(write(root, buf, 1), EBADF);
    CHECK_ERR(ioctl(root, TCGETS, buf), ENOTTY);
    CHECK_ERR(open("/", O_WRONLY), EISDIR);
    CHECK_ERR(open("/", O_RDWR | O_DIRECTORY), EISDIR);

    /* getdents64 on something that is not a directory. */
    int exe = open("/proc/self/exe", O_RDONLY);
    CHECK(exe >= 0, "open /proc/self/exe");
    CHECK_ERR(syscall(SYS_getdents64, exe, buf, sizeof buf), ENOTDIR);
    CHECK_ERR(open("/proc/self/exe", O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERR(open("/proc/self/exe/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(open("/proc/self/exe/", O_RDONLY), ENOTDIR);
    CHECK_ERR(open("/proc/self/exe", O_RDONLY | O_NOFOLLOW), ELOOP);
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK_ERR(syscall(SYS_getdents64, fds[0], buf, sizeof buf), ENOTDIR);

    /* /proc and /proc/self. */
    int proc = open("/proc", O_RDONLY | O_DIRECTORY);
    CHECK(find_entry(proc, 4096, "self", &type, &ino, &count) == 1 && type == DT_LNK, "/proc lists self, a link");
    CHECK(lseek(proc, 0, SEEK_SET) == 0, "rewind /proc");
    CHECK(find_entry(proc, 4096, "meminfo", &type, &ino, &count) == 1 && type == DT_REG, "/proc lists meminfo");
    char pid[16];
    snprintf(pid, sizeof pid, "%d", getpid());
    CHECK(lseek(proc, 0, SEEK_SET) == 0, "rewind /proc");
    CHECK(find_entry(proc, 4096, pid, &type, &ino, &count) == 1 && type == DT_DIR, "/proc lists the pid, a directory");
    CHECK(stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == ino, "/proc/self is the pid's directory");
    CHECK(lstat("/proc/self", &st) == 0 && S_ISLNK(st.st_mode), "lstat /proc/self: a link");
    char link[64];
    long len = readlink("/proc/self", link, sizeof link);
    CHECK(len == (long)strlen(pid) && memcmp(link, pid, len) == 0, "readlink /proc/self: the pid");

    int self = open("/proc/self", O_RDONLY | O_DIRECTORY);
    CHECK(self >= 0, "open /proc/self");
    CHECK(find_entry(self, 4096, "maps", &type, &ino, &count) == 1 && type == DT_REG, "/proc/self lists maps");
    CHECK(stat("/proc/self/maps", &st) == 0 && st.st_ino == ino && S_ISREG(st.st_mode), "same inode as stat");
    CHECK(lseek(self, 0, SEEK_SET) == 0, "rewind");
    CHECK(find_entry(self, 4096, "exe", &type, &ino, &count) == 1 && type == DT_LNK, "/proc/self lists exe, a link");
    CHECK(lseek(self, 0, SEEK_SET) == 0, "rewind");
    CHECK(find_entry(self, 4096, "status", &type, &ino, &count) == 1 && type == DT_REG, "/proc/self lists status");

    /* openat and the *at calls relative to a directory descriptor. */
    int maps = openat(self, "maps", O_RDONLY);
    CHECK(maps >= 0, "openat(/proc/self, maps)");
    CHECK(read(maps, buf, 5) == 5, "read it");
    CHECK(fstatat(proc, "self/status", &st, 0) == 0 && S_ISREG(st.st_mode), "fstatat(/proc, self/status)");
    CHECK(fstatat(self, "..", &st, 0) == 0 && S_ISDIR(st.st_mode), "fstatat(/proc/self, ..)");
    CHECK(fstatat(self, "exe", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode), "exe: a link, not followed");
    CHECK(fstatat(self, "exe", &st, 0) == 0 && S_ISREG(st.st_mode), "exe followed: the program");
    CHECK(faccessat(self, "status", R_OK, 0) == 0, "faccessat R_OK");
    CHECK_ERR(faccessat(self, "status", X_OK, 0), EACCES);
    CHECK_ERR(faccessat(self, "nothing", R_OK, 0), ENOENT);
    CHECK_ERR(openat(maps, "x", O_RDONLY), ENOTDIR);
    CHECK_ERR(openat(1000000, "x", O_RDONLY), EBADF);
    CHECK(openat(1000000, "/proc/self/maps", O_RDONLY) >= 0, "an absolute path ignores the descriptor");
    len = readlinkat(self, "exe", link, sizeof link);
    CHECK(len > 0, "readlinkat(/proc/self, exe)");
    CHECK_ERR(readlinkat(self, "maps", link, sizeof link), EINVAL);
    CHECK_ERR(readlink("/proc/self/exe", link, 0), EINVAL);

    /* O_PATH: a handle for fstat, fcntl and *at calls, not for I/O. */
    int handle = open("/proc/self", O_PATH | O_DIRECTORY);
    CHECK(handle >= 0, "O_PATH open");
    CHECK(fcntl(handle, F_GETFL) == (O_PATH | O_DIRECTORY), "F_GETFL O_PATH|O_DIRECTORY (%#x)", fcntl(handle, F_GETFL));
    CHECK(fstat(handle, &st) == 0 && S_ISDIR(st.st_mode), "fstat on O_PATH");
    CHECK_ERR(read(handle, buf, 1), EBADF);
    CHECK_ERR(syscall(SYS_getdents64, handle, buf, sizeof buf), EBADF);
    CHECK_ERR(ioctl(handle, FIONREAD, &count), EBADF);
    CHECK_ERR(fcntl(handle, F_SETFL, O_NONBLOCK), EBADF);
    CHECK(fstatat(handle, "maps", &st, 0) == 0, "an O_PATH directory as dirfd");
    int link_handle = open("/proc/self/exe", O_PATH | O_NOFOLLOW);
    CHECK(link_handle >= 0 && fstat(link_handle, &st) == 0 && S_ISLNK(st.st_mode), "O_PATH|O_NOFOLLOW on a link");
    CHECK(readlinkat(link_handle, "", link, sizeof link) > 0, "readlinkat(link handle, \"\")");

    /* Errors of the path walk. */
    CHECK_ERR(open("", O_RDONLY), ENOENT);
    CHECK_ERR(open("/proc/nothing", O_RDONLY), ENOENT);
    CHECK_ERR(open("/proc/self/maps", O_RDONLY | O_CREAT | O_EXCL, 0600), EEXIST);
    CHECK_ERR(stat("/proc/self/maps/", &st), ENOTDIR);
    CHECK_ERR(stat((const char *)16, &st), EFAULT);
    char *long_name = malloc(300);
    memset(long_name, 'a', 299);
    long_name[0] = '/';
    long_name[299] = 0;
    CHECK_ERR(stat(long_name, &st), ENAMETOOLONG);
    free(long_name);

    close(maps);
    close(handle);
    close(link_handle);
    close(self);
    close(proc);
    close(exe);
    close(root);
    close(fds[0]);
    close(fds[1]);
}

static void statx_checks(void) {
    struct statx sx;
    struct stat st;
    const unsigned basic = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_INO | STATX_SIZE;
    CHECK(statx(AT_FDCWD, "/proc/self/exe", 0, STATX_BASIC_STATS, &sx) == 0, "statx /proc/self/exe");
    CHECK(stat("/proc/self/exe", &st) == 0, "stat /proc/self/exe");
    CHECK((sx.stx_mask & basic) == basic, "the basic fields are there (%#x)", sx.stx_mask);
    CHECK(S_ISREG(sx.stx_mode) && sx.stx_ino == st.st_ino && sx.stx_size == (uint64_t)st.st_size &&
              sx.stx_nlink == st.st_nlink && sx.stx_blksize == (uint32_t)st.st_blksize,
          "statx agrees with stat");
    CHECK(makedev(sx.stx_dev_major, sx.stx_dev_minor) == st.st_dev, "the device too");
    CHECK(statx(AT_FDCWD, "/proc/self/exe", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) == 0 && S_ISLNK(sx.stx_mode),
          "AT_SYMLINK_NOFOLLOW: the link");
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(statx(fds[0], "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) == 0 && S_ISFIFO(sx.stx_mode), "AT_EMPTY_PATH: the pipe");
    CHECK(statx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_TYPE, &sx) == 0 && S_ISDIR(sx.stx_mode),
          "AT_EMPTY_PATH, AT_FDCWD: the working directory");
    CHECK(statx(AT_FDCWD, "/", 0, STATX_TYPE, &sx) == 0, "statx /");
    CHECK((sx.stx_mask & STATX_TYPE) && (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
              (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT),
          "/ is a mount's root");
    CHECK(statx(AT_FDCWD, "/proc/self", 0, 0, &sx) == 0 && S_ISDIR(sx.stx_mode), "a mask of 0 still fills the type");
    CHECK_ERR(statx(AT_FDCWD, "", 0, STATX_BASIC_STATS, &sx), ENOENT);
    CHECK_ERR(statx(AT_FDCWD, "/", 0, 0x80000000u, &sx), EINVAL);
    CHECK_ERR(statx(AT_FDCWD, "/", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &sx), EINVAL);
    CHECK_ERR(statx(AT_FDCWD, "/", 0x40000, STATX_BASIC_STATS, &sx), EINVAL);
    CHECK_ERR(statx(1000000, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx), EBADF);
    CHECK_ERR(statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, (struct statx *)16), EFAULT);
    CHECK_ERR(fstatat(AT_FDCWD, "/", &st, 0x40000), EINVAL);
    close(fds[0]);
    close(fds[1]);
}

static void terminal(void) {
    struct termios tio;
    struct winsize ws;
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK_ERR(ioctl(fds[0], TCGETS, &tio), ENOTTY);
    CHECK_ERR(ioctl(fds[1], TIOCGWINSZ, &ws), ENOTTY);
    CHECK_ERR(ioctl(fds[0], 0x12345678, 0), ENOTTY);
    CHECK(isatty(fds[0]) == 0 && errno == ENOTTY, "isatty on a pipe");
    int file = open("/proc/self/exe", O_RDONLY);
    CHECK_ERR(ioctl(file, TCGETS, &tio), ENOTTY);
    CHECK_ERR(ioctl(file, TIOCGWINSZ, &ws), ENOTTY);
    int left = -1;
    CHECK(lseek(file, 100, SEEK_SET) == 100 && ioctl(file, FIONREAD, &left) == 0, "FIONREAD on a file");
    struct stat st;
    fstat(file, &st);
    CHECK(left == st.st_size - 100, "the bytes after the offset (%d)", left);
    CHECK_ERR(ioctl(1000000, TCGETS, &tio), EBADF);
    CHECK_ERR(ioctl(-1, TIOCGWINSZ, &ws), EBADF);

    /* 0, 1 and 2: the console on Nacre (a terminal), whatever the harness
       gives on Linux. A terminal's answers must make sense. */
    for (int fd = 0; fd <= 2; fd++) {
        errno = 0;
        int got = ioctl(fd, TCGETS, &tio);
        CHECK(got == 0 || errno == ENOTTY || errno == EINVAL, "TCGETS on %d: a terminal or not (%d)", fd, errno);
        if (got == 0) {
            CHECK((tio.c_cflag & CSIZE) == CS8 && (tio.c_cflag & CREAD), "termios: 8 bits, receiver on");
            CHECK(tio.c_cc[VINTR] == 3, "Ctrl-C interrupts");
            CHECK(ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0, "a window size");
            CHECK(isatty(fd) == 1, "isatty");
            pid_t group = -1;
            CHECK(ioctl(fd, TIOCGPGRP, &group) == 0 && group > 0, "a foreground group");
            CHECK(tcsetattr(fd, TCSANOW, &tio) == 0, "tcsetattr with the same settings");
            CHECK_ERR(ioctl(fd, TCGETS, (void *)16), EFAULT);
        }
    }
    close(file);
    close(fds[0]);
    close(fds[1]);
}

static void others(void) {
    /* access: the process is root here and on the harness. */
    CHECK(access("/proc/self/exe", R_OK | X_OK) == 0, "access R_OK|X_OK on the program");
    CHECK(access("/", R_OK | X_OK) == 0, "access on /");
    CHECK_ERR(access("/proc/self/maps", X_OK), EACCES);
    CHECK_ERR(access("/nothing/at/all", F_OK), ENOENT);
    CHECK_ERR(access("/proc/self/exe", 8), EINVAL);
    CHECK_ERR(syscall(SYS_faccessat2, AT_FDCWD, "/", F_OK, 0x4000), EINVAL);
    /* umask: stored and returned. */
    mode_t old = umask(077);
    CHECK(umask(old) == 077, "umask returns the previous mask");
    CHECK(umask(old) == old, "and again");
    CHECK(umask(01777) == old && umask(old) == 0777, "only the permission bits are kept");
    /* lseek on /proc files: from the start or from here only. */
    int maps = open("/proc/self/maps", O_RDONLY);
    CHECK(lseek(maps, 10, SEEK_SET) == 10 && lseek(maps, 5, SEEK_CUR) == 15, "seq file: SEEK_SET, SEEK_CUR");
    CHECK_ERR(lseek(maps, 0, 7), EINVAL);
    /* The C library's O_LARGEFILE is 0 on x86-64; the kernel's is 0100000,
       which open adds. */
    CHECK(fcntl(maps, F_GETFL) == (O_RDONLY | 0100000), "F_GETFL of a file: O_LARGEFILE (%#x)", fcntl(maps, F_GETFL));
    CHECK_ERR(fcntl(maps, F_SETFL, O_DIRECT), EINVAL);
    CHECK_ERR(fcntl(maps, F_GETPIPE_SZ), EBADF);
    struct flock lock = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    CHECK(fcntl(maps, F_GETLK, &lock) == 0 && lock.l_type == F_UNLCK, "F_GETLK: no conflicting lock");
    lock.l_type = F_WRLCK;
    CHECK_ERR(fcntl(maps, F_SETLK, &lock), EBADF);
    lock.l_type = 7;
    CHECK_ERR(fcntl(maps, F_SETLK, &lock), EINVAL);
    close(maps);
}

int main(void) {
    directories();
    statx_checks();
    terminal();
    others();
    return finish("fs_dir");
}
