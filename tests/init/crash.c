/* Touches memory it does not have: killed by SIGSEGV. */
#include <stdint.h>
#include <stdio.h>

static volatile uintptr_t nowhere = 0x1000;

int main(void) {
    printf("crash: touching %#lx\n", (unsigned long)nowhere);
    fflush(stdout);
    return *(volatile int *)nowhere;
}
