/*
 * A program without a handler that touches memory it does not have: the
 * kernel ends it with SIGSEGV and goes on. (The harness expects "killed by
 * SIGSEGV" here, on Linux and on Nacre.)
 * expect: signal 11
 */
#include <stdint.h>
#include <stdio.h>

static volatile uintptr_t nowhere = 0x1000;

int main(void) {
    printf("touching %#lx\n", (unsigned long)nowhere);
    fflush(stdout);
    return *(volatile int *)nowhere;
}
