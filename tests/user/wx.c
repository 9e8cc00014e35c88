/*
 * W^X as the program sees it: its code cannot be written, its data and
 * stack cannot be run, and its segments are never both.
 */
#include "check.h"
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>

static sigjmp_buf recover;
static volatile int got_code;
static volatile uintptr_t got_addr;

static void catcher(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    got_code = info->si_code;
    got_addr = (uintptr_t)info->si_addr;
    siglongjmp(recover, 1);
}

static int function(void) { return 42; }
static unsigned char data_code[16] = {0xb8, 0x2a, 0, 0, 0, 0xc3}; /* mov eax, 42; ret */

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = catcher;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);

    got_code = 0;
    if (sigsetjmp(recover, 1) == 0)
        *(volatile unsigned char *)(uintptr_t)function = 0xc3;
    CHECK(got_code == SEGV_ACCERR && got_addr == (uintptr_t)function, "writing code: SEGV_ACCERR (got %d)", got_code);

    got_code = 0;
    if (sigsetjmp(recover, 1) == 0)
        ((int (*)(void))(uintptr_t)data_code)();
    CHECK(got_code == SEGV_ACCERR && got_addr == (uintptr_t)data_code, "running data: SEGV_ACCERR (got %d)", got_code);

    unsigned char stack_code[16];
    memcpy(stack_code, data_code, sizeof stack_code);
    got_code = 0;
    if (sigsetjmp(recover, 1) == 0)
        ((int (*)(void))(uintptr_t)stack_code)();
    CHECK(got_code == SEGV_ACCERR, "running the stack: SEGV_ACCERR (got %d)", got_code);
    CHECK(function() == 42, "code still runs");
    return finish("wx");
}
