/*
 * The alternate signal stack: sigaltstack's answers and errors (EPERM while
 * on it, ENOMEM below MINSIGSTKSZ, EINVAL for a bad mode), SA_ONSTACK
 * handlers running on it (and a stack overflow caught there), SS_ONSTACK
 * seen from inside, SS_AUTODISARM, uc_stack; and the write-barrier pattern:
 * a SIGSEGV handler that fixes the protection with mprotect and returns,
 * so that the faulting instruction runs again.
 */
#define _GNU_SOURCE
#include "check.h"
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ALT_SIZE (64 * 1024)
/* The kernel's MINSIGSTKSZ on x86 (glibc's may be a sysconf value). */
#define KERNEL_MINSIGSTKSZ 2048
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

static char *alt;
static volatile uintptr_t handler_sp;
static volatile int inner_flags, inner_errno, inner_set_result, uc_flags;
static volatile void *uc_sp;
static volatile size_t uc_size;

static void on_alt(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    ucontext_t *uc = context;
    int local;
    handler_sp = (uintptr_t)&local;
    stack_t now;
    sigaltstack(NULL, &now);
    inner_flags = now.ss_flags;
    /* Changing the stack while running on it: EPERM. */
    stack_t other = {.ss_sp = alt, .ss_size = ALT_SIZE / 2, .ss_flags = 0};
    errno = 0;
    inner_set_result = sigaltstack(&other, NULL);
    inner_errno = errno;
    uc_sp = uc->uc_stack.ss_sp;
    uc_size = uc->uc_stack.ss_size;
    uc_flags = uc->uc_stack.ss_flags;
}

static sigjmp_buf recover;
static volatile int overflow_flags;
static volatile uintptr_t overflow_sp;

static void on_overflow(int sig) {
    (void)sig;
    int local;
    overflow_sp = (uintptr_t)&local;
    stack_t now;
    sigaltstack(NULL, &now);
    overflow_flags = now.ss_flags;
    siglongjmp(recover, 1);
}

static volatile int forever = 1;
static int recurse(int depth) {
    volatile char frame[16384];
    frame[0] = (char)depth;
    return forever ? recurse(depth + 1) + frame[0] : 0;
}

/* The write barrier: the page starts read-only; the first write to it
   faults, the handler makes it writable and returns; the write runs again. */
static char *barrier_page;
static volatile int barrier_faults, barrier_code;
static volatile uintptr_t barrier_addr;

static void on_barrier(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)context;
    barrier_faults++;
    barrier_code = info->si_code;
    barrier_addr = (uintptr_t)info->si_addr;
    char *page = (char *)((uintptr_t)info->si_addr & ~(uintptr_t)4095);
    if (page != barrier_page || mprotect(page, 4096, PROT_READ | PROT_WRITE) != 0)
        abort();
}

static volatile int nested_count;
static void on_usr2(int sig) {
    (void)sig;
    if (nested_count++ == 0)
        raise(SIGUSR2); /* blocked while this handler runs: pending */
}

static int on_alt_range(uintptr_t sp) { return sp >= (uintptr_t)alt && sp < (uintptr_t)alt + ALT_SIZE; }

int main(void) {
    stack_t ss, old;
    alt = malloc(ALT_SIZE);

    /* At first: none. */
    CHECK(sigaltstack(NULL, &old) == 0, "query");
    CHECK(old.ss_flags == SS_DISABLE && old.ss_size == 0 && old.ss_sp == NULL, "no stack at first (flags %d)",
          old.ss_flags);

    /* Errors. */
    ss = (stack_t){.ss_sp = alt, .ss_size = KERNEL_MINSIGSTKSZ - 1, .ss_flags = 0};
    CHECK_ERR(sigaltstack(&ss, NULL), ENOMEM);
    ss.ss_size = ALT_SIZE;
    ss.ss_flags = 4;
    CHECK_ERR(sigaltstack(&ss, NULL), EINVAL);
    CHECK_ERR(sigaltstack((stack_t *)16, NULL), EFAULT);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == SS_DISABLE, "failed calls changed nothing (%d)", old.ss_flags);
    /* The old value is written after the change: the change stays. */
    ss.ss_flags = 0;
    CHECK_ERR(sigaltstack(&ss, (stack_t *)16), EFAULT);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_sp == alt, "set although the old value could not be written");
    ss.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&ss, &old) == 0 && old.ss_flags == 0 && old.ss_size == ALT_SIZE, "disable it; it was set");

    /* Set it; read it back. */
    ss = (stack_t){.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, &old) == 0 && old.ss_flags == SS_DISABLE, "set");
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_sp == alt && old.ss_size == ALT_SIZE && old.ss_flags == 0,
          "read back (flags %d)", old.ss_flags);

    /* A handler with SA_ONSTACK runs on it and sees SS_ONSTACK. */
    struct sigaction sa = {0};
    sa.sa_sigaction = on_alt;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(on_alt_range(handler_sp), "the handler ran on the alternate stack (%#lx)", (unsigned long)handler_sp);
    CHECK(inner_flags == SS_ONSTACK, "inside, sigaltstack says SS_ONSTACK (%d)", inner_flags);
    CHECK(inner_set_result == -1 && inner_errno == EPERM, "changing it while on it: EPERM (%d %d)", inner_set_result,
          inner_errno);
    CHECK(uc_sp == alt && uc_size == ALT_SIZE && uc_flags == 0, "uc_stack describes it (%p %zu %d)", uc_sp,
          (size_t)uc_size, uc_flags);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == 0 && old.ss_size == ALT_SIZE, "after: still set, not on it");

    /* Without SA_ONSTACK: on the normal stack. */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(!on_alt_range(handler_sp), "without SA_ONSTACK, the normal stack");
    CHECK(inner_flags == 0 && inner_set_result == 0, "not on it: it can be changed (%d %d)", inner_flags,
          inner_set_result);
    ss = (stack_t){.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0, "set it back");

    /* SS_AUTODISARM: disabled while the handler runs, restored after. */
    ss.ss_flags = SS_AUTODISARM;
    CHECK(sigaltstack(&ss, NULL) == 0, "SS_AUTODISARM");
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == (int)SS_AUTODISARM, "reported (%#x)", old.ss_flags);
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK(on_alt_range(handler_sp), "on the stack");
    CHECK(inner_flags == SS_DISABLE && inner_set_result == 0, "disarmed inside: SS_DISABLE, changeable (%d %d)",
          inner_flags, inner_set_result);
    CHECK(uc_flags == (int)SS_AUTODISARM && uc_sp == alt, "uc_stack: the armed stack (%#x)", uc_flags);
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_sp == alt && old.ss_size == ALT_SIZE &&
              old.ss_flags == (int)SS_AUTODISARM,
          "sigreturn re-armed it (%zu %#x)", old.ss_size, old.ss_flags);

    /* SS_DISABLE. */
    ss.ss_flags = SS_DISABLE;
    CHECK(sigaltstack(&ss, NULL) == 0, "SS_DISABLE");
    CHECK(sigaltstack(NULL, &old) == 0 && old.ss_flags == SS_DISABLE && old.ss_size == 0, "disabled");
    raise(SIGUSR1);
    CHECK(!on_alt_range(handler_sp), "SA_ONSTACK without a stack: the normal stack");

    /* A stack overflow is caught on the alternate stack. */
    ss = (stack_t){.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    CHECK(sigaltstack(&ss, NULL) == 0, "set again");
    struct sigaction segv = {0};
    segv.sa_handler = on_overflow;
    segv.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigaction(SIGSEGV, &segv, NULL);
    if (sigsetjmp(recover, 1) == 0)
        recurse(0);
    CHECK(on_alt_range(overflow_sp) && overflow_flags == SS_ONSTACK, "stack overflow handled on the alternate stack");

    /* The write barrier. */
    barrier_page = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sigaction barrier = {0};
    barrier.sa_sigaction = on_barrier;
    barrier.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &barrier, NULL);
    CHECK(barrier_page[100] == 0, "readable");
    ((volatile char *)barrier_page)[100] = 42;
    CHECK(barrier_faults == 1 && barrier_page[100] == 42, "the write ran again after the handler (%d faults)",
          barrier_faults);
    CHECK(barrier_code == SEGV_ACCERR && barrier_addr == (uintptr_t)barrier_page + 100, "SEGV_ACCERR at the byte");
    ((volatile char *)barrier_page)[200] = 7;
    CHECK(barrier_faults == 1, "no fault once writable");

    /* A signal raised while blocked in its handler is delivered when the
       handler returns (rt_sigreturn unblocks it). */
    signal(SIGUSR2, on_usr2);
    raise(SIGUSR2);
    CHECK(nested_count == 2, "the pending one ran right after (%d)", nested_count);
    return finish("sig_altstack");
}
