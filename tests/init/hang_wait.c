/* Forks a child that spins forever, and waits for it (forever). */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t child = fork();
    if (child == 0) {
        for (volatile unsigned long n = 0;; n++) {
        }
    }
    printf("hang_wait: waiting for child %d, which spins forever\n", (int)child);
    fflush(stdout);
    int status;
    waitpid(child, &status, 0);
    return 0;
}
