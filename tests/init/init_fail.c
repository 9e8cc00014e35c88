/* Exits with status 1 (as the init: a failing QEMU status; in runall: FAIL). */
#include <stdio.h>

int main(void) {
    printf("init_fail: exiting with 1\n");
    return 1;
}
