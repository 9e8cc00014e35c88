/*
 * mount(2) and umount2(2) of the file systems a program expects: proc at
 * /proc and tmpfs at /dev/shm mount (sysfs at /sys and devtmpfs at /dev
 * too, or are busy, as in a container); an unknown type is ENODEV, a
 * missing target ENOENT, no type EINVAL; a remount or a change of
 * propagation must name a mount's root; umount2 checks its flags and
 * wants a mount's root (EINVAL otherwise).
 *
 * On Linux the mounts are made in a mount namespace of a child's own
 * (unshare(CLONE_NEWNS)), so the host's stay as they are; where unshare is
 * not served (ENOSYS), the mounts are the system's own.
 *
 * needs: CAP_SYS_ADMIN
 */
#define _GNU_SOURCE
#include "check.h"
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define OK_OR_BUSY(call)                                                                                              \
    do {                                                                                                              \
        errno = 0;                                                                                                    \
        long result_ = (long)(call);                                                                                  \
        CHECK(result_ == 0 || errno == EBUSY, "%s: %ld errno %d", #call, result_, errno);                            \
    } while (0)

static int checks(void) {
    CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "make / private: %s", strerror(errno));
    CHECK(mount("proc", "/proc", "proc", 0, NULL) == 0, "mount proc at /proc: %s", strerror(errno));
    CHECK(mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL) == 0, "mount tmpfs at /dev/shm: %s", strerror(errno));
    OK_OR_BUSY(mount("sysfs", "/sys", "sysfs", 0, NULL));
    OK_OR_BUSY(mount("devtmpfs", "/dev", "devtmpfs", 0, NULL));
    CHECK_ERR(mount("none", "/tmp", "nacre-no-such-type", 0, NULL), ENODEV);
    CHECK_ERR(mount("none", "/no/such/directory", "tmpfs", 0, NULL), ENOENT);
    CHECK_ERR(mount("none", "/tmp", NULL, 0, NULL), EINVAL);
    CHECK_ERR(mount("none", (const char *)16, "tmpfs", 0, NULL), EFAULT);
    CHECK_ERR(mount("none", "/tmp", (const char *)16, 0, NULL), EFAULT);
    CHECK_ERR(mount(NULL, "/proc/self", NULL, MS_REMOUNT, NULL), EINVAL);
    CHECK_ERR(mount(NULL, "/proc/self", NULL, MS_PRIVATE, NULL), EINVAL);
    CHECK_ERR(mount(NULL, "/proc", NULL, MS_PRIVATE | MS_SHARED, NULL), EINVAL);
    CHECK(mount(NULL, "/proc", NULL, MS_PRIVATE, NULL) == 0, "/proc private: %s", strerror(errno));
    CHECK_ERR(umount2("/proc/self", 0), EINVAL);
    CHECK_ERR(umount2("/proc", 0x100), EINVAL);
    CHECK_ERR(umount2("/no/such/directory", 0), ENOENT);
    CHECK_ERR(umount2("/proc", MNT_EXPIRE | MNT_DETACH), EINVAL);
    OK_OR_BUSY(umount2("/dev/shm", 0));
    CHECK(access("/proc/self/stat", R_OK) == 0, "/proc is still there");
    return checks_failed;
}

int main(void) {
    int pipefd[2];
    pipe(pipefd);
    pid_t child = fork();
    if (child == 0) {
        int counts[2] = {0, 1};
        if (unshare(CLONE_NEWNS) == 0 || errno == ENOSYS) {
            checks();
            counts[0] = checks_passed;
            counts[1] = checks_failed;
        } else {
            printf("FAIL unshare(CLONE_NEWNS): %s\n", strerror(errno));
        }
        fflush(stdout);
        write(pipefd[1], counts, sizeof counts);
        _exit(0);
    }
    int counts[2] = {0, 1};
    read(pipefd[0], counts, sizeof counts);
    waitpid(child, NULL, 0);
    checks_passed = counts[0];
    checks_failed = counts[1];
    return finish("mount");
}
