/* Ignores SIGINT and SIGTERM and spins forever: only SIGKILL ends it. */
#include <signal.h>
#include <stdio.h>

int main(void) {
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    printf("hang: spinning forever\n");
    fflush(stdout);
    for (volatile unsigned long n = 0;; n++) {
    }
}
