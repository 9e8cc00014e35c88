/*
 * Run as the init (pid 1): signals whose action is the default do not
 * reach it, as Linux shields its init: kill(1, ...) with SIGTERM, SIGKILL,
 * SIGSTOP (from itself and from a child) and a raised SIGINT succeed and
 * change nothing; a signal with a handler is delivered. kill(-1, ...)
 * reaches every process but the caller and pid 1: with no other process it
 * is ESRCH, with a child it ends the child. Exits 0 when all holds, else 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_usr1(int sig) {
    (void)sig;
    handled++;
}

static void pause_ms(long ms) {
    struct timespec delay = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&delay, NULL);
}

static int failed;
static void expect(int condition, const char *what) {
    if (!condition) {
        printf("init_shield: FAIL: %s (errno %d)\n", what, errno);
        failed = 1;
    }
}

int main(void) {
    expect(getpid() == 1, "pid 1");
    expect(kill(1, SIGTERM) == 0, "kill(1, SIGTERM) succeeds");
    expect(kill(1, SIGKILL) == 0, "kill(1, SIGKILL) succeeds");
    expect(kill(1, SIGSTOP) == 0, "kill(1, SIGSTOP) succeeds");
    expect(raise(SIGINT) == 0, "raise(SIGINT) succeeds");
    pause_ms(20);
    printf("init_shield: alive after SIGTERM, SIGKILL, SIGSTOP and SIGINT\n");
    fflush(stdout);

    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    expect(kill(1, SIGUSR1) == 0 && handled == 1, "a caught SIGUSR1 is delivered");

    errno = 0;
    expect(kill(-1, 0) == -1 && errno == ESRCH, "kill(-1, 0) with no other process: ESRCH");

    pid_t child = fork();
    if (child == 0) {
        kill(1, SIGKILL);
        kill(1, SIGTERM);
        for (;;)
            pause();
    }
    pause_ms(50);
    expect(kill(-1, SIGTERM) == 0, "kill(-1, SIGTERM) succeeds");
    int status = 0;
    expect(waitpid(child, &status, 0) == child && WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
           "kill(-1, SIGTERM) ended the child");
    if (!failed)
        printf("init_shield: all good\n");
    return failed;
}
