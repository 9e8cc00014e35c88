/*
 * The file system in RAM (/tmp, /dev/shm, memfd_create), as a test
 * harness uses it: a temporary directory made with mkdtemp and entered
 * with chdir (getcwd follows, also after a rename of a directory above);
 * files created, written, read, appended to, truncated and grown (holes
 * read as zeros), pread/pwrite, lseek; stat's mode (with the umask),
 * owner, size, blocks, link count and times; getdents64; rename (over a
 * file, over an empty directory, RENAME_NOREPLACE), link, symlink and
 * readlink, unlink of an open file (its data stays until closed), rmdir
 * and the errors in Linux's order: EEXIST, ENOENT, ENOTDIR, EISDIR,
 * ENOTEMPTY, EINVAL, EXDEV; chmod/fchmod/chown/utimensat; statfs (tmpfs's
 * magic for /dev/shm: /tmp may be another file system on a host); fsync; memfd_create; O_TMPFILE; a child of fork sees the files
 * and the working directory.
 */
#define _GNU_SOURCE
#include "check.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994

static char base[64];

static int write_all(int fd, const char *text) {
    size_t len = strlen(text);
    return write(fd, text, len) == (ssize_t)len;
}

static int has_text(const char *path, const char *text) {
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n == (ssize_t)strlen(text) && memcmp(buf, text, n) == 0;
}

/* The names in directory `path`, without . and .., joined by spaces in
   sorted order is not promised: count them and look for `want`. */
static int lists(const char *path, const char *want, int *count) {
    DIR *dir = opendir(path);
    if (!dir)
        return 0;
    int found = 0;
    *count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, ".."))
            continue;
        (*count)++;
        found |= !strcmp(entry->d_name, want);
    }
    closedir(dir);
    return found;
}

static void directories(void) {
    strcpy(base, "/tmp/fs_tmpfs.XXXXXX");
    CHECK(mkdtemp(base) != NULL, "mkdtemp in /tmp");
    CHECK(chdir(base) == 0, "chdir into it");
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) && !strcmp(cwd, base), "getcwd: %s", cwd);
    CHECK_ERR(syscall(SYS_getcwd, cwd, 3), ERANGE);

    CHECK(mkdir("d", 0777) == 0, "mkdir d");
    CHECK_ERR(mkdir("d", 0777), EEXIST);
    CHECK_ERR(mkdir("no/such", 0777), ENOENT);
    CHECK_ERR(mkdir(".", 0777), EEXIST);
    struct stat st;
    CHECK(stat("d", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0755 && st.st_nlink == 2,
          "a directory, 0777 & ~022, two links (%o %lu)", st.st_mode, (unsigned long)st.st_nlink);
    CHECK(st.st_uid == 0 || st.st_uid == geteuid(), "owned by the caller");
    CHECK(mkdir("d/e", 0700) == 0 && stat("d", &st) == 0 && st.st_nlink == 3, "a subdirectory adds a link");
    CHECK(chdir("d/e") == 0 && getcwd(cwd, sizeof cwd) && strstr(cwd, "/d/e"), "chdir relative: %s", cwd);
    CHECK(chdir("..") == 0 && getcwd(cwd, sizeof cwd) && strlen(cwd) == strlen(base) + 2, "chdir ..: %s", cwd);
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(chdir("/") == 0 && fchdir(fd) == 0 && getcwd(cwd, sizeof cwd) && strlen(cwd) == strlen(base) + 2,
          "fchdir back: %s", cwd);
    close(fd);
    CHECK(chdir(base) == 0, "back to the base");

    /* A rename of a directory above the working directory: getcwd follows. */
    CHECK(chdir("d/e") == 0 && rename("../../d", "../../d2") == 0, "rename a directory above the cwd");
    CHECK(getcwd(cwd, sizeof cwd) && strstr(cwd, "/d2/e"), "getcwd after it: %s", cwd);
    CHECK(chdir(base) == 0 && rename("d2", "d") == 0, "and back");

    CHECK_ERR(rmdir("d"), ENOTEMPTY);
    CHECK_ERR(rmdir("."), EINVAL);
    CHECK_ERR(rmdir("nothing"), ENOENT);
    CHECK(rmdir("d/e") == 0 && stat("d", &st) == 0 && st.st_nlink == 2, "rmdir d/e");
    CHECK_ERR(chdir("d/e"), ENOENT);

    /* A directory removed while it is the working directory. */
    CHECK(mkdir("gone", 0777) == 0 && chdir("gone") == 0 && rmdir(base) == -1, "in a directory about to go");
    CHECK(rmdir("../gone") == 0, "remove the working directory");
    CHECK_ERR(syscall(SYS_getcwd, cwd, sizeof cwd), ENOENT);
    CHECK_ERR(open("x", O_CREAT | O_RDWR, 0600), ENOENT);
    CHECK(chdir(base) == 0, "back to the base");
}

static void files(void) {
    mode_t old = umask(077);
    int fd = open("f", O_CREAT | O_EXCL | O_RDWR, 0666);
    umask(old);
    CHECK(fd >= 0, "create f");
    CHECK_ERR(open("f", O_CREAT | O_EXCL | O_RDWR, 0666), EEXIST);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600 && st.st_size == 0 &&
              st.st_nlink == 1,
          "a regular file, 0666 & ~077, empty, one link (%o)", st.st_mode);
    CHECK(write_all(fd, "hello, world"), "write");
    CHECK(lseek(fd, 0, SEEK_CUR) == 12 && fstat(fd, &st) == 0 && st.st_size == 12, "offset and size 12");
    char buf[128] = {0};
    CHECK(pread(fd, buf, 5, 7) == 5 && !memcmp(buf, "world", 5), "pread");
    CHECK(pwrite(fd, "W", 1, 7) == 1 && lseek(fd, 0, SEEK_CUR) == 12, "pwrite leaves the offset");
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, buf, sizeof buf) == 12 && !memcmp(buf, "hello, World", 12),
          "read it all");
    CHECK(read(fd, buf, sizeof buf) == 0, "end of file");
    CHECK(lseek(fd, 0, SEEK_END) == 12 && lseek(fd, -2, SEEK_END) == 10, "SEEK_END");
    CHECK_ERR(lseek(fd, -20, SEEK_END), EINVAL);

    /* Holes read as zeros; truncation cuts and zeroes. */
    CHECK(pwrite(fd, "end", 3, 3 * 4096 + 10) == 3 && fstat(fd, &st) == 0 && st.st_size == 3 * 4096 + 13,
          "a write past the end grows the file");
    char page[4096];
    memset(page, 7, sizeof page);
    CHECK(pread(fd, page, sizeof page, 4096) == 4096, "read the hole");
    int zeros = 1;
    for (size_t i = 0; i < sizeof page; i++)
        zeros &= page[i] == 0;
    CHECK(zeros, "a hole reads as zeros");
    CHECK(st.st_blocks < (3 * 4096 + 13) / 512, "holes hold no blocks (%ld)", (long)st.st_blocks);
    CHECK(ftruncate(fd, 5) == 0 && fstat(fd, &st) == 0 && st.st_size == 5, "ftruncate to 5");
    CHECK(ftruncate(fd, 100) == 0 && pread(fd, buf, 100, 0) == 100 && !memcmp(buf, "hello\0\0\0", 8),
          "grown again: the cut bytes read as zeros");
    CHECK_ERR(ftruncate(fd, -1), EINVAL);
    CHECK(truncate("f", 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3, "truncate by name");
    CHECK_ERR(truncate("d", 0), EISDIR);
    CHECK_ERR(truncate("none", 0), ENOENT);
    close(fd);

    /* O_APPEND, O_TRUNC, a read-only descriptor. */
    fd = open("f", O_WRONLY | O_APPEND);
    CHECK(fd >= 0 && write_all(fd, "lo") && lseek(fd, 0, SEEK_CUR) == 5, "append");
    close(fd);
    CHECK(has_text("f", "hello"), "appended");
    fd = open("f", O_RDONLY);
    CHECK_ERR(write(fd, "x", 1), EBADF);
    CHECK_ERR(ftruncate(fd, 0), EINVAL);
    close(fd);
    fd = open("f", O_RDWR | O_TRUNC);
    CHECK(fd >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC empties it");
    CHECK(write_all(fd, "data"), "write again");
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync, fdatasync");
    close(fd);
    CHECK_ERR(open("f/x", O_RDONLY), ENOTDIR);
    CHECK_ERR(open("d", O_WRONLY), EISDIR);
    CHECK_ERR(open("f/", O_RDONLY), ENOTDIR);
}

static void names(void) {
    struct stat st, st2;
    /* Hard links share the inode. */
    CHECK(link("f", "g") == 0 && stat("f", &st) == 0 && stat("g", &st2) == 0, "link f g");
    CHECK(st.st_ino == st2.st_ino && st.st_nlink == 2, "one inode, two links");
    CHECK_ERR(link("f", "g"), EEXIST);
    CHECK_ERR(link("d", "d3"), EPERM);
    CHECK_ERR(link("none", "h"), ENOENT);
    CHECK(unlink("g") == 0 && stat("f", &st) == 0 && st.st_nlink == 1, "unlink one name");

    /* Symbolic links. */
    CHECK(symlink("f", "s") == 0, "symlink");
    char target[64] = {0};
    CHECK(readlink("s", target, sizeof target) == 1 && target[0] == 'f', "readlink");
    CHECK(lstat("s", &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 1, "lstat: a link of size 1");
    CHECK(stat("s", &st) == 0 && S_ISREG(st.st_mode), "stat follows it");
    CHECK(has_text("s", "data"), "open through it");
    CHECK_ERR(symlink("f", "s"), EEXIST);
    CHECK_ERR(readlink("f", target, sizeof target), EINVAL);
    CHECK(symlink("loop", "loop") == 0, "a link to itself");
    CHECK_ERR(open("loop", O_RDONLY), ELOOP);
    CHECK_ERR(open("s", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK(symlink(base, "up") == 0 && has_text("up/f", "data"), "an absolute link to a directory");
    CHECK(unlink("loop") == 0 && unlink("up") == 0, "unlink links");

    /* Renames. */
    int fd = open("r1", O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write_all(fd, "one"), "r1");
    close(fd);
    CHECK(rename("r1", "r2") == 0 && access("r1", F_OK) == -1 && has_text("r2", "one"), "rename");
    CHECK(rename("f", "r2") == 0 && has_text("r2", "data"), "rename over a file");
    CHECK(rename("r2", "f") == 0, "back");
    CHECK(mkdir("e1", 0777) == 0 && mkdir("e2", 0777) == 0, "two empty directories");
    CHECK(rename("e1", "e2") == 0 && access("e1", F_OK) == -1, "rename over an empty directory");
    CHECK_ERR(rename("f", "e2"), EISDIR);
    CHECK_ERR(rename("e2", "f"), ENOTDIR);
    CHECK_ERR(rename("d", "d/sub"), EINVAL);
    CHECK_ERR(rename("none", "x"), ENOENT);
    CHECK(symlink("f", "s2") == 0, "another link");
    CHECK_ERR(syscall(SYS_renameat2, AT_FDCWD, "s", AT_FDCWD, "s2", 1), EEXIST); /* RENAME_NOREPLACE */
    CHECK(syscall(SYS_renameat2, AT_FDCWD, "s", AT_FDCWD, "s3", 1) == 0, "RENAME_NOREPLACE to a free name");
    CHECK_ERR(syscall(SYS_renameat2, AT_FDCWD, "s3", AT_FDCWD, "s4", 8), EINVAL);
    CHECK(unlink("s2") == 0 && unlink("s3") == 0 && rmdir("e2") == 0, "clean up");

    /* unlink: of a directory EISDIR; of an open file, the data stays. */
    CHECK_ERR(unlink("d"), EISDIR);
    CHECK_ERR(unlink("none"), ENOENT);
    CHECK_ERR(unlinkat(AT_FDCWD, "f", 0x100), EINVAL);
    CHECK_ERR(unlinkat(AT_FDCWD, "f", AT_REMOVEDIR), ENOTDIR);
    CHECK(unlinkat(AT_FDCWD, "d", AT_REMOVEDIR) == 0, "unlinkat AT_REMOVEDIR");
    fd = open("f", O_RDWR);
    CHECK(unlink("f") == 0 && access("f", F_OK) == -1 && errno == ENOENT, "unlink an open file");
    char buf[8] = {0};
    struct stat open_st;
    CHECK(pread(fd, buf, 4, 0) == 4 && !memcmp(buf, "data", 4), "its data stays while open");
    CHECK(fstat(fd, &open_st) == 0 && open_st.st_nlink == 0, "no links left");
    close(fd);

    /* getdents64 through readdir. */
    int count;
    fd = open("a", O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK(mkdir("b", 0777) == 0, "b");
    CHECK(lists(".", "a", &count) && lists(".", "b", &count) && count == 2, "readdir: a and b (%d)", count);
    CHECK(lists("/tmp", base + 5, &count), "the base is in /tmp");
}

static void metadata(void) {
    int fd = open("a", O_RDWR);
    struct stat st;
    CHECK(chmod("a", 0640) == 0 && stat("a", &st) == 0 && (st.st_mode & 07777) == 0640, "chmod");
    CHECK(fchmod(fd, 04755) == 0 && fstat(fd, &st) == 0 && (st.st_mode & 07777) == 04755, "fchmod");
    CHECK(chown("a", 65534, 65534) == 0 && stat("a", &st) == 0 && st.st_uid == 65534 && st.st_gid == 65534,
          "chown to nobody");
    CHECK((st.st_mode & 07777) == 0755, "chown clears set-user-ID (%o)", st.st_mode);
    CHECK(fchown(fd, -1, 0) == 0 && fstat(fd, &st) == 0 && st.st_uid == 65534 && st.st_gid == 0,
          "fchown: -1 keeps the owner");
    CHECK(lchown("a", 0, -1) == 0, "lchown");
    CHECK_ERR(chmod("none", 0600), ENOENT);

    struct timespec times[2] = {{1000, 500}, {2000, 600}};
    CHECK(utimensat(AT_FDCWD, "a", times, 0) == 0 && stat("a", &st) == 0, "utimensat");
    CHECK(st.st_atim.tv_sec == 1000 && st.st_atim.tv_nsec == 500 && st.st_mtim.tv_sec == 2000 &&
              st.st_mtim.tv_nsec == 600,
          "the times set");
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_nsec = UTIME_NOW;
    CHECK(utimensat(AT_FDCWD, "a", times, 0) == 0 && stat("a", &st) == 0, "UTIME_OMIT, UTIME_NOW");
    CHECK(st.st_atim.tv_sec == 1000 && st.st_mtim.tv_sec != 2000, "atime kept, mtime now");
    times[0].tv_nsec = 1000000000;
    CHECK_ERR(utimensat(AT_FDCWD, "a", times, 0), EINVAL);
    CHECK_ERR(utimensat(AT_FDCWD, "a", NULL, 0x4000), EINVAL);

    struct stat before, after;
    CHECK(fstat(fd, &before) == 0, "fstat");
    CHECK(write(fd, "x", 1) == 1 && fstat(fd, &after) == 0, "a write");
    CHECK(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
              (after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec >= before.st_mtim.tv_nsec),
          "moves mtime on");
    close(fd);

    /* /tmp may be another file system on a host; /dev/shm is tmpfs on Linux and on Nacre. */
    struct statfs fs;
    CHECK(statfs(".", &fs) == 0 && fs.f_bfree <= fs.f_blocks && fs.f_namelen == 255, "statfs of the base");
    CHECK(statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC && fs.f_bsize == 4096,
          "statfs /dev/shm: tmpfs (%#lx)", (unsigned long)fs.f_type);
    fd = open("/dev/shm", O_RDONLY | O_DIRECTORY);
    CHECK(fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC, "fstatfs");
    close(fd);
    CHECK(statfs("/proc", &fs) == 0 && fs.f_type == 0x9fa0, "/proc is proc");
    CHECK(statfs("/sys", &fs) == 0 && fs.f_type == 0x62656572, "/sys is sysfs (%#lx)", (unsigned long)fs.f_type);
    CHECK(statfs("/dev", &fs) == 0 && fs.f_type == TMPFS_MAGIC, "/dev is devtmpfs, a tmpfs to statfs (%#lx)",
          (unsigned long)fs.f_type);
    CHECK_ERR(statfs("/none/such", &fs), ENOENT);

    /* Another file system: EXDEV. */
    char shm[80];
    snprintf(shm, sizeof shm, "/dev/shm/fs_tmpfs.%d", getpid());
    fd = open(shm, O_CREAT | O_RDWR | O_EXCL, 0600);
    CHECK(fd >= 0 && write_all(fd, "shm"), "a file in /dev/shm");
    close(fd);
    CHECK_ERR(link(shm, "shm-link"), EXDEV);
    CHECK_ERR(rename(shm, "shm-moved"), EXDEV);
    CHECK(unlink(shm) == 0, "unlink it");
}

static void unnamed(void) {
    int fd = memfd_create("test", MFD_CLOEXEC);
    CHECK(fd >= 0, "memfd_create");
    CHECK(fcntl(fd, F_GETFD) == FD_CLOEXEC, "MFD_CLOEXEC");
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "read-write");
    struct stat st;
    CHECK(ftruncate(fd, 8192) == 0 && fstat(fd, &st) == 0 && st.st_size == 8192 && S_ISREG(st.st_mode) &&
              st.st_nlink == 0,
          "a regular file of no name");
    CHECK(pwrite(fd, "memfd", 5, 4096) == 5, "pwrite");
    char buf[8] = {0};
    CHECK(pread(fd, buf, 5, 4096) == 5 && !memcmp(buf, "memfd", 5), "pread");
    close(fd);
    CHECK_ERR(memfd_create("x", 0x100), EINVAL);
    char name[300];
    memset(name, 'n', sizeof name);
    name[sizeof name - 1] = 0;
    CHECK_ERR(memfd_create(name, 0), EINVAL);
    CHECK_ERR(syscall(SYS_memfd_create, (void *)8, 0), EFAULT);

    fd = open(".", O_TMPFILE | O_RDWR, 0600);
    CHECK(fd >= 0 && write_all(fd, "tmp") && fstat(fd, &st) == 0 && st.st_nlink == 0 && st.st_size == 3,
          "O_TMPFILE: a file with no name");
    close(fd);
    CHECK_ERR(open(".", O_TMPFILE | O_RDONLY, 0600), EINVAL);
}

static void inherited(void) {
    pid_t child = fork();
    if (child == 0) {
        char cwd[PATH_MAX];
        int ok = getcwd(cwd, sizeof cwd) && !strcmp(cwd, base) && access("a", F_OK) == 0;
        int fd = open("from-child", O_CREAT | O_WRONLY, 0600);
        ok &= fd >= 0 && write(fd, "child", 5) == 5;
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the child works in the same directory (%#x)", status);
    CHECK(has_text("from-child", "child"), "and the parent reads what it wrote");
}

static void clean_up(void) {
    CHECK(unlink("a") == 0 && unlink("from-child") == 0 && rmdir("b") == 0, "empty the base");
    CHECK(chdir("/") == 0 && rmdir(base) == 0, "remove the base");
}

int main(void) {
    directories();
    files();
    names();
    metadata();
    unnamed();
    inherited();
    clean_up();
    return finish("fs_tmpfs");
}
