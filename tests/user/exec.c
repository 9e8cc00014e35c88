/*
 * execve: the program is replaced (same pid, new memory, arguments and
 * environment passed), close-on-exec descriptors are closed and the others
 * kept, caught signals return to their default; errors (ENOENT, ENOEXEC,
 * EFAULT) leave the caller running. The program runs itself again with the
 * argument "child".
 */
#define _GNU_SOURCE
#include "check.h"
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void handler(int sig) { (void)sig; }
static volatile unsigned long bad_pointer = 16;

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "child") == 0) {
        /* The new image: argv[2] is the fd kept open, argv[3] the one closed. */
        int kept = atoi(argv[2]), closed = atoi(argv[3]);
        CHECK(fcntl(kept, F_GETFD) == 0, "a descriptor without FD_CLOEXEC survives exec");
        CHECK_ERR(fcntl(closed, F_GETFD), EBADF);
        CHECK(getenv("NACRE_TEST") && strcmp(getenv("NACRE_TEST"), "yes") == 0, "the environment was passed");
        struct sigaction sa;
        CHECK(sigaction(SIGUSR1, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL, "a caught signal is back to SIG_DFL");
        CHECK(sigaction(SIGUSR2, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN, "an ignored signal stays ignored");
        return finish("exec child") == 0 ? 7 : 1;
    }
    CHECK_ERR(execve("/no/such/program", argv, NULL), ENOENT);
    CHECK_ERR(execve((char *)bad_pointer, argv, NULL), EFAULT);
    CHECK_ERR(execve("/proc/self/maps", argv, NULL), EACCES);
    signal(SIGUSR1, handler);
    signal(SIGUSR2, SIG_IGN);
    int kept = open("/proc/self/exe", O_RDONLY);
    int closed = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    CHECK(kept >= 0 && closed >= 0, "open");
    pid_t pid = fork();
    if (pid == 0) {
        char a[16], b[16];
        snprintf(a, sizeof a, "%d", kept);
        snprintf(b, sizeof b, "%d", closed);
        char *args[] = {argv[0], "child", a, b, NULL};
        char *env[] = {"NACRE_TEST=yes", NULL};
        execve("/proc/self/exe", args, env);
        _exit(99); /* not reached */
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7, "the new image ran its checks (status %#x)", status);
    return finish("exec");
}
