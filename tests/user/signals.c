/*
 * Signals a program raises itself: each trap's signal, si_code and
 * si_addr; handlers and their masks; sigreturn putting every register back.
 */
#include "check.h"
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

static sigjmp_buf recover;
static volatile int got_signal, got_code;
static volatile uintptr_t got_addr;

static void catcher(int sig, siginfo_t *info, void *context) {
    (void)context;
    got_signal = sig;
    got_code = info->si_code;
    got_addr = (uintptr_t)info->si_addr;
    siglongjmp(recover, 1);
}

static volatile int counted;
static void counter(int sig) {
    (void)sig;
    counted++;
}

static void handle(int sig, void (*handler)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | flags;
    sigaction(sig, &sa, NULL);
}

extern char ud2_here[];
static void do_ud2(void) { __asm__ volatile("ud2_here: ud2"); }

static volatile int divisor = 0;
/* Addresses through a volatile, so the compiler cannot see them. */
static volatile uintptr_t null_page = 16, kernel_text = 0xffffffff81000000UL, non_canonical = 0x8000000000000000UL;
/* The first page of the direct map of RAM, present and supervisor-only on
   both (Linux's default offset is Nacre's). */
static volatile uintptr_t direct_map = 0xffff888000000000UL;

int main(void) {
    handle(SIGSEGV, catcher, 0);
    handle(SIGILL, catcher, 0);
    handle(SIGFPE, catcher, 0);
    handle(SIGTRAP, catcher, 0);

    if (sigsetjmp(recover, 1) == 0)
        *(volatile int *)null_page = 1;
    CHECK(got_signal == SIGSEGV && got_code == SEGV_MAPERR && got_addr == 16, "NULL page: SIGSEGV MAPERR 16 (got %d %d %#lx)",
          got_signal, got_code, (unsigned long)got_addr);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        (void)*(volatile int *)kernel_text;
    CHECK(got_signal == SIGSEGV && got_code == SEGV_MAPERR && got_addr == 0xffffffff81000000UL,
          "kernel address: SIGSEGV MAPERR (got %d %d %#lx)", got_signal, got_code, (unsigned long)got_addr);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        (void)*(volatile int *)direct_map;
    CHECK(got_signal == SIGSEGV && got_code == SEGV_MAPERR && got_addr == 0xffff888000000000UL,
          "present kernel page: SIGSEGV MAPERR (got %d %d %#lx)", got_signal, got_code, (unsigned long)got_addr);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        (void)*(volatile int *)non_canonical;
    CHECK(got_signal == SIGSEGV && got_code == SI_KERNEL && got_addr == 0,
          "non-canonical address: SIGSEGV SI_KERNEL 0 (got %d %d %#lx)", got_signal, got_code, (unsigned long)got_addr);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        do_ud2();
    CHECK(got_signal == SIGILL && got_code == ILL_ILLOPN && got_addr == (uintptr_t)ud2_here,
          "ud2: SIGILL ILL_ILLOPN at the instruction (got %d %d %#lx)", got_signal, got_code, (unsigned long)got_addr);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        divisor = 10 / divisor;
    CHECK(got_signal == SIGFPE && got_code == FPE_INTDIV, "division by zero: SIGFPE FPE_INTDIV (got %d %d)", got_signal,
          got_code);

    got_signal = 0;
    if (sigsetjmp(recover, 1) == 0)
        __asm__ volatile("int3");
    CHECK(got_signal == SIGTRAP && got_code == SI_KERNEL, "int3: SIGTRAP SI_KERNEL (got %d %d)", got_signal, got_code);

    /* raise: the handler runs before raise returns. */
    signal(SIGUSR1, counter);
    raise(SIGUSR1);
    CHECK(counted == 1, "raise ran the handler once (%d)", counted);

    /* Blocked: pending until unblocked. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0, "block SIGUSR1");
    raise(SIGUSR1);
    CHECK(counted == 1, "blocked: not delivered yet (%d)", counted);
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0, "unblock");
    CHECK(counted == 2, "delivered on unblocking (%d)", counted);

    /* Ignored: nothing happens. */
    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    CHECK(1, "ignored SIGUSR2 did not end the program");

    /* The old action comes back from sigaction. */
    struct sigaction previous;
    CHECK(sigaction(SIGUSR1, NULL, &previous) == 0 && previous.sa_handler == counter, "sigaction reads back");
    CHECK_ERR(sigaction(SIGKILL, &previous, NULL), EINVAL);
    CHECK_ERR(syscall(SYS_rt_sigaction, 65, NULL, NULL, 8), EINVAL);
    CHECK_ERR(syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4), EINVAL);
    CHECK_ERR(syscall(SYS_kill, getpid(), 65), EINVAL);
    CHECK(syscall(SYS_kill, getpid(), 0) == 0, "kill with signal 0 checks only");

    /* Registers survive a handler: a signal in the middle of a loop that
       keeps values in registers (and in xmm). */
    double x = 1.5;
    long sum = 0;
    for (int i = 0; i < 1000; i++) {
        if (i == 500)
            raise(SIGUSR1);
        sum += i;
        x *= 1.0001;
    }
    CHECK(sum == 499500 && x > 1.65 && x < 1.66, "state after a handler (sum %ld x %f)", sum, x);
    return finish("signals");
}
