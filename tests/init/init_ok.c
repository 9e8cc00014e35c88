/*
 * Run as the init (cargo xtask run --init): it must be pid 1 with parent 0;
 * it prints its arguments; a grandchild whose parent ends is adopted by
 * pid 1 (getppid() turns 1) and reaped here with wait. Exits 0 when all
 * holds, else 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(long ms) {
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

int main(int argc, char **argv) {
    int failed = 0;
    printf("init_ok: pid %d, parent %d, %d arguments:", (int)getpid(), (int)getppid(), argc - 1);
    for (int i = 1; i < argc; i++) printf(" [%s]", argv[i]);
    printf("\n");
    if (getpid() != 1 || getppid() != 0) {
        printf("init_ok: FAIL: not pid 1 with parent 0\n");
        failed = 1;
    }
    fflush(stdout);

    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild < 0) _exit(2);
        if (grandchild == 0) {
            /* Wait (at most 5 s) for the parent to end and pid 1 to adopt us. */
            for (int i = 0; i < 500 && getppid() != 1; i++) pause_ms(10);
            _exit(getppid() == 1 ? 42 : 43);
        }
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("init_ok: FAIL: the child did not exit with 0 (status %#x)\n", status);
        failed = 1;
    }
    /* The orphan is ours now: wait for any child. */
    pid_t orphan = wait(&status);
    if (orphan <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 42) {
        printf("init_ok: FAIL: no adopted orphan reaped (wait %d, status %#x, errno %d)\n", (int)orphan, status, errno);
        failed = 1;
    } else {
        printf("init_ok: orphan %d adopted by pid 1 and reaped\n", (int)orphan);
    }
    if (wait(&status) != -1 || errno != ECHILD) {
        printf("init_ok: FAIL: a child is left\n");
        failed = 1;
    }
    printf("init_ok: %s\n", failed ? "FAILED" : "all good");
    return failed;
}
