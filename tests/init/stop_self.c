/*
 * For runall's time limit (cargo xtask initchecks): stops itself with
 * SIGSTOP and never continues; the limit's SIGKILL must end it.
 */
#include <signal.h>
#include <unistd.h>

int main(void) {
    kill(getpid(), SIGSTOP);
    return 0;
}
