/* Exits with status 0. */
#include <stdio.h>

int main(void) {
    printf("pass: exiting with 0\n");
    return 0;
}
