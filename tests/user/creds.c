/*
 * User and group ids and what they allow, as Linux 6.1 does it for root
 * and after root drops its privileges (each case in a forked child, so
 * the test itself stays root): getuid/geteuid/getgid/getegid, getresuid
 * and getresgid, setuid/setreuid/setresuid (and the gid forms) within and
 * beyond what an unprivileged process may take, setfsuid, setgroups and
 * getgroups; how the capability sets follow (an effective uid leaving 0
 * clears the effective set and coming back restores it; leaving uid 0
 * everywhere clears them all); and the permission checks of the file
 * calls: open, access (real ids) and faccessat(AT_EACCESS), a path through
 * a directory without search permission, creating in
 * a directory without write permission, the sticky bit, chmod and chown
 * by a non-owner, utimensat, truncate, and kill of another user's process.
 *
 * needs: CAP_SETUID CAP_SETGID CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_KILL
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534

static char base[64], pub[96], secret[96], shared[96], rootfile[128];

static uint64_t caps(int which) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0)
        return ~0ULL;
    if (which == 0)
        return data[0].effective | (uint64_t)data[1].effective << 32;
    return data[0].permitted | (uint64_t)data[1].permitted << 32;
}

static int make(const char *path, mode_t mode) {
    int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, mode);
    if (fd < 0)
        return 0;
    int ok = write(fd, "text", 4) == 4 && fchmod(fd, mode) == 0;
    close(fd);
    return ok;
}

/* Runs `body` in a child; its checks count there, its status here. */
static void in_child(const char *what, void (*body)(void)) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        body();
        fflush(stdout);
        _exit(checks_failed ? 1 : 0);
    }
    int status = -1;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s (status %#x)", what, status);
}

static void as_root(void) {
    uid_t r, e, s;
    CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0, "root");
    CHECK(getresuid(&r, &e, &s) == 0 && r == 0 && e == 0 && s == 0, "getresuid: 0 0 0");
    CHECK_ERR(syscall(SYS_getresuid, (void *)8, &e, &s), EFAULT);
    CHECK(setgroups(0, NULL) == 0 && getgroups(0, NULL) == 0, "setgroups: none");
    gid_t list[2] = {5, 7};
    CHECK(setgroups(2, list) == 0 && getgroups(0, NULL) == 2, "two groups");
    gid_t back[2] = {0};
    CHECK(getgroups(2, back) == 2 && back[0] + back[1] == 12, "read back");
    CHECK_ERR(getgroups(1, back), EINVAL);
    CHECK_ERR(setuid(-1), EINVAL);
}

static void saved_ids(void) {
    /* Root may take any ids; then only those it has. */
    CHECK(setresuid(1000, 2000, 3000) == 0, "setresuid 1000 2000 3000");
    uid_t r, e, s;
    CHECK(getresuid(&r, &e, &s) == 0 && r == 1000 && e == 2000 && s == 3000, "read back");
    CHECK(caps(0) == 0 && caps(1) == 0, "no uid 0 left: no capabilities");
    CHECK(seteuid(3000) == 0 && geteuid() == 3000, "the saved uid may become the effective one");
    CHECK_ERR(seteuid(4000), EPERM);
    CHECK(setuid(1000) == 0 && getresuid(&r, &e, &s) == 0 && r == 1000 && e == 1000 && s == 3000,
          "setuid unprivileged: only the effective (and fs) uid (%u %u %u)", r, e, s);
    CHECK_ERR(setuid(0), EPERM);
    CHECK_ERR(setresuid(-1, 0, -1), EPERM);
    CHECK(setreuid(-1, 3000) == 0 && getresuid(&r, &e, &s) == 0 && r == 1000 && e == 3000 && s == 3000,
          "setreuid(-1, saved): the saved uid follows an effective one other than the real");
    CHECK_ERR(setreuid(0, -1), EPERM);
    CHECK_ERR(setgroups(0, NULL), EPERM);
}

static void effective_only(void) {
    CHECK(seteuid(NOBODY) == 0 && geteuid() == NOBODY && getuid() == 0, "seteuid(nobody)");
    CHECK(caps(0) == 0 && caps(1) != 0, "the effective set cleared, permitted kept");
    CHECK_ERR(open(secret, O_RDONLY), EACCES);
    CHECK(access(secret, R_OK) == 0, "access() checks the real uid: root");
    CHECK_ERR(faccessat(AT_FDCWD, secret, R_OK, AT_EACCESS), EACCES);
    CHECK(seteuid(0) == 0 && caps(0) == caps(1), "back to uid 0: effective = permitted again");
    int fd = open(secret, O_RDONLY);
    CHECK(fd >= 0, "and root reads the secret again");
    close(fd);

    /* The file system uid alone. */
    CHECK(setfsuid(NOBODY) == 0, "setfsuid returns the old one");
    CHECK_ERR(open(secret, O_RDONLY), EACCES);
    CHECK(setfsuid(0) == NOBODY, "and again");
    fd = open(secret, O_RDONLY);
    CHECK(fd >= 0, "root's file system uid: the file system capabilities are back");
    close(fd);
}

static void nobody(void) {
    CHECK(setgroups(0, NULL) == 0 && setresgid(NOBODY, NOBODY, NOBODY) == 0, "group nobody");
    CHECK(setresuid(NOBODY, NOBODY, NOBODY) == 0, "user nobody");
    CHECK(getuid() == NOBODY && geteuid() == NOBODY && getgid() == NOBODY && getegid() == NOBODY, "ids");
    CHECK(caps(0) == 0 && caps(1) == 0, "no capabilities");
    CHECK_ERR(setuid(0), EPERM);
    CHECK_ERR(setgid(0), EPERM);

    CHECK_ERR(open(secret, O_RDONLY), EACCES);
    CHECK_ERR(access(secret, R_OK), EACCES);
    CHECK(access(secret, F_OK) == 0, "it exists");
    int fd = open(shared, O_RDONLY);
    CHECK(fd >= 0, "a 0644 file reads");
    close(fd);
    CHECK_ERR(open(shared, O_WRONLY), EACCES);
    CHECK_ERR(access(shared, W_OK), EACCES);
    CHECK_ERR(truncate(shared, 0), EACCES);
    CHECK_ERR(utimensat(AT_FDCWD, shared, NULL, 0), EACCES);
    struct timespec times[2] = {{1, 0}, {1, 0}};
    CHECK_ERR(utimensat(AT_FDCWD, shared, times, 0), EPERM);
    CHECK_ERR(chmod(shared, 0666), EPERM);
    CHECK_ERR(chown(shared, NOBODY, -1), EPERM);

    char path[128];
    /* Through a directory without search permission: nothing. */
    snprintf(path, sizeof path, "%s/closed/inside", base);
    CHECK_ERR(open(path, O_RDONLY), EACCES);
    struct stat closed;
    CHECK_ERR(stat(path, &closed), EACCES);
    snprintf(path, sizeof path, "%s/closed", base);
    CHECK_ERR(chdir(path), EACCES);
    snprintf(path, sizeof path, "%s/mine", base);
    CHECK_ERR(open(path, O_CREAT | O_WRONLY, 0644), EACCES);
    CHECK_ERR(mkdir(path, 0755), EACCES);
    CHECK_ERR(unlink(shared), EACCES);

    /* In the sticky, world-writable directory. */
    snprintf(path, sizeof path, "%s/mine", pub);
    fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0640);
    CHECK(fd >= 0, "create in the sticky directory");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_uid == NOBODY && st.st_gid == NOBODY, "owned by nobody");
    close(fd);
    CHECK(chmod(path, 0600) == 0, "chmod of one's own file");
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat of one's own file");
    CHECK_ERR(chown(path, 0, -1), EPERM);
    CHECK_ERR(chown(path, -1, 0), EPERM);
    CHECK(chown(path, -1, NOBODY) == 0, "chown to one's own group");
    CHECK_ERR(unlink(rootfile), EPERM); /* root's file, sticky directory */
    char renamed[128];
    snprintf(renamed, sizeof renamed, "%s/moved", pub);
    CHECK_ERR(rename(rootfile, renamed), EPERM);

    CHECK_ERR(kill(getppid(), 0), EPERM);
    CHECK(kill(getpid(), 0) == 0, "one's own process");
}

int main(void) {
    strcpy(base, "/tmp/creds.XXXXXX");
    CHECK(mkdtemp(base) != NULL && chmod(base, 0755) == 0, "a base directory, root's, 0755");
    snprintf(pub, sizeof pub, "%s/pub", base);
    snprintf(secret, sizeof secret, "%s/secret", base);
    snprintf(shared, sizeof shared, "%s/shared", base);
    snprintf(rootfile, sizeof rootfile, "%s/rootfile", pub);
    CHECK(mkdir(pub, 0777) == 0 && chmod(pub, 01777) == 0, "a sticky directory for everyone");
    CHECK(make(secret, 0600) && make(shared, 0644) && make(rootfile, 0666), "root's files");
    char closed[128], inside[160];
    snprintf(closed, sizeof closed, "%s/closed", base);
    snprintf(inside, sizeof inside, "%s/inside", closed);
    CHECK(mkdir(closed, 0700) == 0 && make(inside, 0644), "a directory only root may enter, a readable file in it");

    as_root();
    in_child("ids a process may take", saved_ids);
    in_child("the effective and file system uids alone", effective_only);
    in_child("nobody", nobody);

    char path[128];
    snprintf(path, sizeof path, "%s/mine", pub);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_uid == NOBODY, "nobody's file stays");
    CHECK(unlink(path) == 0 && unlink(rootfile) == 0 && rmdir(pub) == 0, "root removes it all");
    CHECK(unlink(inside) == 0 && rmdir(closed) == 0, "the closed directory");
    CHECK(unlink(secret) == 0 && unlink(shared) == 0 && rmdir(base) == 0, "and the base");
    return finish("creds");
}
