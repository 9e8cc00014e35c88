/*
 * socketpair(AF_UNIX): two connected sockets, each reading what the other
 * writes (SOCK_STREAM as a byte stream, SOCK_SEQPACKET and SOCK_DGRAM one
 * packet a read, the rest of a longer packet dropped), across fork; a
 * closed end gives the other end of file and EPIPE (with SIGPIPE, or not
 * with MSG_NOSIGNAL); SOCK_NONBLOCK and SOCK_CLOEXEC; send/recv with
 * MSG_DONTWAIT; fstat shows a socket, /proc/self/fd a socket:[INO] link;
 * and the errors in Linux's order: EINVAL for unknown type flags,
 * EFAULT, EAFNOSUPPORT, EOPNOTSUPP for AF_INET (no pairs),
 * EPROTONOSUPPORT, ESOCKTNOSUPPORT, ESPIPE, ENOTSOCK, EISCONN (an address
 * to a connected stream).
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int pipes;

static void on_pipe(int sig) {
    (void)sig;
    pipes++;
}

static void stream(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "a stream pair");
    char buf[64] = {0};
    CHECK(write(sv[0], "hello", 5) == 5 && write(sv[0], " world", 6) == 6, "two writes");
    CHECK(read(sv[1], buf, sizeof buf) == 11 && !memcmp(buf, "hello world", 11), "one read takes the stream");
    CHECK(write(sv[1], "back", 4) == 4 && read(sv[0], buf, 4) == 4 && !memcmp(buf, "back", 4), "and the other way");
    struct stat st;
    CHECK(fstat(sv[0], &st) == 0 && S_ISSOCK(st.st_mode), "a socket to fstat (%o)", st.st_mode);
    char link[64] = {0}, path[64], want[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", sv[0]);
    snprintf(want, sizeof want, "socket:[%lu]", (unsigned long)st.st_ino);
    CHECK(readlink(path, link, sizeof link - 1) > 0 && !strcmp(link, want), "/proc/self/fd: %s", link);
    CHECK_ERR(lseek(sv[0], 0, SEEK_SET), ESPIPE);
    CHECK_ERR(pread(sv[0], buf, 1, 0), ESPIPE);
    CHECK_ERR(recv(sv[0], buf, 1, MSG_DONTWAIT), EAGAIN);
    CHECK(send(sv[0], "x", 1, 0) == 1 && recv(sv[1], buf, 1, 0) == 1 && buf[0] == 'x', "send and recv");

    /* Across fork. */
    pid_t child = fork();
    if (child == 0) {
        close(sv[0]);
        char got[8] = {0};
        int ok = read(sv[1], got, 4) == 4 && !memcmp(got, "ping", 4) && write(sv[1], "pong", 4) == 4;
        _exit(ok ? 0 : 1);
    }
    CHECK(write(sv[0], "ping", 4) == 4 && read(sv[0], buf, 4) == 4 && !memcmp(buf, "pong", 4), "ping, pong");
    int status = -1;
    CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child");

    /* The other end closed. */
    close(sv[1]);
    CHECK(read(sv[0], buf, sizeof buf) == 0, "end of file once the other end is gone");
    pipes = 0;
    CHECK_ERR(write(sv[0], "x", 1), EPIPE);
    CHECK(pipes == 1, "with SIGPIPE");
    CHECK_ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    CHECK(pipes == 1, "and none with MSG_NOSIGNAL");
    close(sv[0]);
}

static void packets(int type, const char *name) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, type, 0, sv) == 0, "a %s pair", name);
    char buf[64] = {0};
    CHECK(write(sv[0], "one", 3) == 3 && write(sv[0], "second", 6) == 6, "%s: two packets", name);
    CHECK(read(sv[1], buf, sizeof buf) == 3 && !memcmp(buf, "one", 3), "%s: the first alone", name);
    CHECK(read(sv[1], buf, 3) == 3 && !memcmp(buf, "sec", 3), "%s: a short read", name);
    CHECK(write(sv[0], "third", 5) == 5 && read(sv[1], buf, sizeof buf) == 5 && !memcmp(buf, "third", 5),
          "%s: the rest of the short-read packet was dropped", name);
    close(sv[0]);
    close(sv[1]);
}

static void flags_and_errors(void) {
    int sv[2] = {-1, -1};
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0, "SOCK_NONBLOCK|SOCK_CLOEXEC");
    CHECK((fcntl(sv[0], F_GETFL) & (O_NONBLOCK | O_ACCMODE)) == (O_NONBLOCK | O_RDWR), "non-blocking, read-write");
    CHECK(fcntl(sv[1], F_GETFD) == FD_CLOEXEC, "close-on-exec");
    char c;
    CHECK_ERR(read(sv[0], &c, 1), EAGAIN);
    close(sv[0]);
    close(sv[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, AF_UNIX, sv) == 0, "protocol PF_UNIX");
    close(sv[0]);
    close(sv[1]);

    CHECK_ERR(socketpair(AF_UNIX, SOCK_STREAM | 0x100, 0, sv), EINVAL);
    CHECK_ERR(socketpair(AF_UNIX, SOCK_STREAM, 0, NULL), EFAULT);
    CHECK_ERR(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    CHECK_ERR(socketpair(AF_UNIX, SOCK_STREAM, 7, sv), EPROTONOSUPPORT);
    CHECK_ERR(socketpair(AF_UNIX, SOCK_RDM, 0, sv), ESOCKTNOSUPPORT);
    CHECK_ERR(socketpair(4242, SOCK_STREAM, 0, sv), EAFNOSUPPORT);

    int p[2];
    CHECK(pipe(p) == 0, "a pipe");
    CHECK_ERR(send(p[1], "x", 1, 0), ENOTSOCK);
    close(p[0]);
    close(p[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "another stream pair");
    struct sockaddr addr = {AF_UNIX, {0}};
    CHECK_ERR(sendto(sv[0], "x", 1, 0, &addr, sizeof addr), EISCONN);
    close(sv[0]);
    close(sv[1]);
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_pipe;
    sigaction(SIGPIPE, &sa, NULL);
    stream();
    packets(SOCK_SEQPACKET, "SOCK_SEQPACKET");
    packets(SOCK_DGRAM, "SOCK_DGRAM");
    flags_and_errors();
    return finish("socketpair");
}
