/*
 * Pipes, dup and fcntl: pipe/pipe2 and their flags, end of file, EAGAIN,
 * the 64 KiB ring and PIPE_BUF atomicity, SIGPIPE/EPIPE, packet mode,
 * FIONREAD and F_GETPIPE_SZ/F_SETPIPE_SZ; dup, dup2, dup3 and
 * F_DUPFD(_CLOEXEC) with their error cases; F_GETFD/F_SETFD and
 * F_GETFL/F_SETFL.
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static volatile int pipe_signals;
static void on_sigpipe(int sig) {
    (void)sig;
    pipe_signals++;
}

static char big[70000];

/* Writes single bytes without blocking until the pipe is full. */
static long fill(int fd) {
    long total = 0;
    while (write(fd, "x", 1) == 1)
        total++;
    return total;
}

static void pipes(void) {
    int fds[2];
    char buf[64];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(fds[0] >= 3 && fds[1] == fds[0] + 1, "the two lowest free descriptors (%d %d)", fds[0], fds[1]);
    CHECK(fcntl(fds[0], F_GETFL) == O_RDONLY, "read end O_RDONLY (%#x)", fcntl(fds[0], F_GETFL));
    CHECK(fcntl(fds[1], F_GETFL) == O_WRONLY, "write end O_WRONLY (%#x)", fcntl(fds[1], F_GETFL));
    CHECK(fcntl(fds[0], F_GETFD) == 0, "no FD_CLOEXEC");

    struct stat st;
    CHECK(fstat(fds[0], &st) == 0 && S_ISFIFO(st.st_mode) && (st.st_mode & 0777) == 0600, "fstat: a FIFO, 0600 (%o)",
          st.st_mode);
    struct stat other;
    CHECK(fstat(fds[1], &other) == 0 && other.st_ino == st.st_ino && other.st_dev == st.st_dev,
          "both ends are one inode");
    CHECK(st.st_size == 0 && st.st_nlink == 1, "size 0, one link");

    CHECK(write(fds[1], "hello", 5) == 5, "write 5");
    int avail = -1;
    CHECK(ioctl(fds[0], FIONREAD, &avail) == 0 && avail == 5, "FIONREAD 5 (%d)", avail);
    CHECK(read(fds[0], buf, 3) == 3 && memcmp(buf, "hel", 3) == 0, "read 3");
    CHECK(read(fds[0], buf, sizeof buf) == 2 && memcmp(buf, "lo", 2) == 0, "read the rest: short read");
    CHECK(read(fds[0], buf, 0) == 0, "a read of 0 bytes returns 0 at once");
    CHECK(write(fds[1], buf, 0) == 0, "a write of 0 bytes returns 0");
    CHECK_ERR(lseek(fds[0], 0, SEEK_SET), ESPIPE);
    CHECK_ERR(pread(fds[0], buf, 1, 0), ESPIPE);
    CHECK_ERR(pwrite(fds[1], buf, 1, 0), ESPIPE);
    CHECK_ERR(read(fds[1], buf, 1), EBADF);
    CHECK_ERR(write(fds[0], "x", 1), EBADF);
    CHECK_ERR(ioctl(fds[0], TCGETS, buf), ENOTTY);

    /* Non-blocking: EAGAIN on an empty pipe with a writer. */
    CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
    CHECK(fcntl(fds[0], F_GETFL) == (O_RDONLY | O_NONBLOCK), "F_GETFL shows it (%#x)", fcntl(fds[0], F_GETFL));
    CHECK_ERR(read(fds[0], buf, 1), EAGAIN);

    /* readv and writev: one transfer. */
    struct iovec out[2] = {{"ab", 2}, {"cde", 3}};
    CHECK(writev(fds[1], out, 2) == 5, "writev 5");
    char first[1], second[10];
    struct iovec in[2] = {{first, 1}, {second, sizeof second}};
    CHECK(readv(fds[0], in, 2) == 5 && first[0] == 'a' && memcmp(second, "bcde", 4) == 0, "readv across vectors");

    /* End of file once the writer is closed. */
    CHECK(close(fds[1]) == 0, "close the write end");
    CHECK(read(fds[0], buf, 1) == 0, "end of file with no writer");
    CHECK(close(fds[0]) == 0, "close the read end");
    CHECK_ERR(close(fds[0]), EBADF);

    /* pipe2 flags. */
    CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2 O_CLOEXEC|O_NONBLOCK");
    CHECK(fcntl(fds[0], F_GETFD) == FD_CLOEXEC && fcntl(fds[1], F_GETFD) == FD_CLOEXEC, "both FD_CLOEXEC");
    CHECK(fcntl(fds[1], F_GETFL) == (O_WRONLY | O_NONBLOCK), "write end O_WRONLY|O_NONBLOCK");
    CHECK_ERR(pipe2(fds + 0, 0x40000000), EINVAL);
    CHECK_ERR(syscall(SYS_pipe2, fds, O_APPEND), EINVAL);
    CHECK_ERR(syscall(SYS_pipe, (int *)16), EFAULT);

    /* The ring: 64 KiB of one-byte writes, then EAGAIN. */
    CHECK(fcntl(fds[1], F_GETPIPE_SZ) == 65536, "F_GETPIPE_SZ 65536 (%d)", fcntl(fds[1], F_GETPIPE_SZ));
    long filled = fill(fds[1]);
    CHECK(filled == 65536 && errno == EAGAIN, "64 KiB fit, then EAGAIN (%ld)", filled);
    CHECK(ioctl(fds[0], FIONREAD, &avail) == 0 && avail == 65536, "FIONREAD 65536 (%d)", avail);
    /* Reading one byte does not free a page: a page-sized write still does
       not fit, a one-byte write merges into the last page... which is full. */
    CHECK(read(fds[0], buf, 1) == 1, "read 1");
    CHECK_ERR(write(fds[1], big, 4096), EAGAIN);
    CHECK_ERR(write(fds[1], "y", 1), EAGAIN);
    /* Reading a whole page frees a slot. */
    CHECK(read(fds[0], big, 4095) == 4095, "read the rest of the first page");
    CHECK(write(fds[1], big, 4096) == 4096, "a page fits again");
    CHECK(read(fds[0], big, sizeof big) == 65536, "drain (64 KiB)");
    CHECK_ERR(read(fds[0], buf, 1), EAGAIN);

    /* PIPE_BUF atomicity: a short write with too little room fails whole;
       a longer one writes what fits. */
    CHECK(write(fds[1], big, 65536 - 100) == 65536 - 100, "fill all but 100 bytes");
    CHECK_ERR(write(fds[1], big, 200), EAGAIN);
    CHECK(read(fds[0], big, sizeof big) == 65536 - 100, "drain");
    CHECK(write(fds[1], big, 1000) == 1000, "1000 bytes in an empty pipe");
    /* The part past the last whole page merges into the first buffer, then
       the 15 free pages fill. */
    long partial = write(fds[1], big, sizeof big);
    CHECK(partial == (long)(sizeof big % 4096) + 15 * 4096, "a long non-blocking write is cut short (%ld)", partial);
    CHECK(read(fds[0], big, sizeof big) == 1000 + partial, "drain");

    /* F_SETPIPE_SZ: a power of two number of pages, at least one. */
    CHECK(fcntl(fds[1], F_SETPIPE_SZ, 1) == 4096, "F_SETPIPE_SZ 1 -> 4096");
    CHECK(fcntl(fds[0], F_GETPIPE_SZ) == 4096, "seen by the other end");
    CHECK(fcntl(fds[1], F_SETPIPE_SZ, 5000) == 8192, "F_SETPIPE_SZ 5000 -> 8192");
    CHECK(fill(fds[1]) == 8192, "8 KiB now");
    CHECK_ERR(fcntl(fds[1], F_SETPIPE_SZ, 4096), EBUSY);
    CHECK(read(fds[0], big, sizeof big) == 8192, "drain");
    CHECK_ERR(fcntl(0 + 100, F_GETPIPE_SZ), EBADF);

    /* No reader: SIGPIPE, and EPIPE when it does not kill. */
    close(fds[0]);
    signal(SIGPIPE, on_sigpipe);
    CHECK_ERR(write(fds[1], "x", 1), EPIPE);
    CHECK(pipe_signals == 1, "SIGPIPE delivered (%d)", pipe_signals);
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERR(write(fds[1], "x", 1), EPIPE);
    CHECK(pipe_signals == 1, "ignored SIGPIPE: EPIPE only");
    CHECK(write(fds[1], "x", 0) == 0, "an empty write does not look for readers");
    close(fds[1]);

    /* Packet mode (O_DIRECT): each write is one packet, each read takes one. */
    CHECK(pipe2(fds, O_DIRECT | O_NONBLOCK) == 0, "pipe2 O_DIRECT");
    CHECK(write(fds[1], "abc", 3) == 3 && write(fds[1], "defg", 4) == 4, "two packets");
    CHECK(read(fds[0], buf, sizeof buf) == 3 && memcmp(buf, "abc", 3) == 0, "first packet alone");
    CHECK(read(fds[0], buf, 2) == 2 && memcmp(buf, "de", 2) == 0, "a short read of the second packet");
    CHECK_ERR(read(fds[0], buf, sizeof buf), EAGAIN);
    close(fds[0]);
    close(fds[1]);
}

static void dups(void) {
    int fds[2];
    char buf[8];
    CHECK(pipe(fds) == 0, "pipe");
    int copy = dup(fds[1]);
    CHECK(copy == fds[1] + 1, "dup: the lowest free descriptor (%d)", copy);
    CHECK(write(copy, "A", 1) == 1, "write through the copy");
    CHECK(close(fds[1]) == 0, "close the original write end");
    CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0, "read end non-blocking");
    CHECK(read(fds[0], buf, 8) == 1 && buf[0] == 'A', "the copy keeps the pipe open");
    CHECK_ERR(read(fds[0], buf, 8), EAGAIN);

    /* dup2 onto an open descriptor closes it silently. */
    int target = dup(fds[0]);
    CHECK(dup2(copy, target) == target, "dup2 onto an open descriptor");
    CHECK(fcntl(target, F_GETFL) == O_WRONLY, "target is the write end now");
    CHECK(dup2(copy, copy) == copy, "dup2 onto itself returns it");
    CHECK_ERR(dup2(1000000, copy), EBADF);
    CHECK_ERR(dup2(copy, -1), EBADF);
    CHECK_ERR(dup2(copy, 1 << 20), EBADF);
    CHECK_ERR(dup(-1), EBADF);

    /* dup3: O_CLOEXEC only, never onto itself. */
    CHECK(dup3(copy, 60, O_CLOEXEC) == 60 && fcntl(60, F_GETFD) == FD_CLOEXEC, "dup3 O_CLOEXEC");
    CHECK(dup2(copy, 60) == 60 && fcntl(60, F_GETFD) == 0, "dup2 clears FD_CLOEXEC");
    CHECK_ERR(dup3(copy, copy, 0), EINVAL);
    CHECK_ERR(dup3(copy, 61, O_NONBLOCK), EINVAL);
    CHECK_ERR(dup3(1000000, 61, 0), EBADF);

    /* F_DUPFD and F_DUPFD_CLOEXEC: the lowest free at or above the argument. */
    CHECK(fcntl(copy, F_DUPFD, 60) == 61, "F_DUPFD 60 -> 61 (60 is taken)");
    int cloexec = fcntl(copy, F_DUPFD_CLOEXEC, 100);
    CHECK(cloexec == 100 && fcntl(cloexec, F_GETFD) == FD_CLOEXEC, "F_DUPFD_CLOEXEC");
    CHECK_ERR(fcntl(copy, F_DUPFD, 1 << 30), EINVAL);
    CHECK(fcntl(cloexec, F_SETFD, 0) == 0 && fcntl(cloexec, F_GETFD) == 0, "F_SETFD 0");
    CHECK(fcntl(cloexec, F_SETFD, FD_CLOEXEC) == 0 && fcntl(cloexec, F_GETFD) == FD_CLOEXEC, "F_SETFD FD_CLOEXEC");
    CHECK(ioctl(cloexec, FIONCLEX) == 0 && fcntl(cloexec, F_GETFD) == 0, "FIONCLEX");
    CHECK(ioctl(cloexec, FIOCLEX) == 0 && fcntl(cloexec, F_GETFD) == FD_CLOEXEC, "FIOCLEX");
    CHECK_ERR(fcntl(1000000, F_GETFD), EBADF);
    CHECK_ERR(fcntl(copy, 99999), EINVAL);

    /* Status flags are shared by the copies; FD_CLOEXEC is not. */
    CHECK(fcntl(copy, F_SETFL, O_NONBLOCK | O_APPEND) == 0, "F_SETFL on one copy");
    CHECK(fcntl(cloexec, F_GETFL) == (O_WRONLY | O_NONBLOCK | O_APPEND), "seen through another (%#x)",
          fcntl(cloexec, F_GETFL));
    CHECK(fcntl(copy, F_SETFL, O_RDWR) == 0 && fcntl(copy, F_GETFL) == O_WRONLY, "F_SETFL keeps the access mode");
    int nb = 1;
    CHECK(ioctl(copy, FIONBIO, &nb) == 0 && (fcntl(copy, F_GETFL) & O_NONBLOCK), "FIONBIO sets O_NONBLOCK");

    for (int fd = 3; fd < 200; fd++)
        close(fd);

    /* RLIMIT_NOFILE bounds the table: with 5, descriptors 3 and 4 only. */
    struct rlimit old, low;
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit NOFILE");
    low.rlim_cur = 5;
    low.rlim_max = old.rlim_max; /* the soft limit only: raising it back needs no privilege */
    CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0, "setrlimit NOFILE 5");
    CHECK(dup(0) == 3 && dup(0) == 4, "3 and 4");
    CHECK_ERR(dup(0), EMFILE);
    CHECK_ERR(pipe(fds), EMFILE);
    CHECK_ERR(fcntl(0, F_DUPFD, 5), EINVAL);
    CHECK_ERR(dup2(0, 5), EBADF);
    CHECK(close(4) == 0, "close 4");
    CHECK_ERR(pipe(fds), EMFILE);
    CHECK(fcntl(3, F_GETFD) == 0, "3 still open");
    CHECK_ERR(fcntl(4, F_GETFD), EBADF);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0, "restore NOFILE");
    close(3);
}

int main(void) {
    pipes();
    dups();
    return finish("fs_pipe");
}
