/*
 * For the shell's ps (cargo xtask initchecks): forks a child that stops
 * itself with SIGSTOP, sees the stop with waitpid(WUNTRACED), says so and
 * exits 0, leaving the child stopped (ps shows it as T). Exits 1 when the
 * stop is not seen.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        kill(getpid(), SIGSTOP);
        _exit(3);
    }
    int status = 0;
    if (waitpid(child, &status, WUNTRACED) != child || !WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
        printf("stopper: FAIL: no stop seen (status %#x)\n", status);
        return 1;
    }
    printf("stopper: the child stopped (SIGSTOP)\n");
    return 0;
}
