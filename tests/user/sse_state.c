/*
 * MXCSR (the SSE control and status register) is the program's own: a
 * rounding mode it sets survives system calls, page faults, interrupts
 * and being switched out; a signal handler starts with the default
 * (0x1f80: every exception masked, round to nearest) and the program gets
 * its own back after the handler, or the one the handler wrote into the
 * saved context; a forked child and a new thread start with their
 * creator's. The xmm registers survive a system call and a fault too.
 */
#define _GNU_SOURCE
#include "check.h"
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define DEFAULT_MXCSR 0x1f80u
#define ROUNDING 0x6000u
#define TOWARD_ZERO 0x6000u
#define DOWN 0x2000u

static unsigned read_mxcsr(void) {
    unsigned value;
    __asm__ volatile("stmxcsr %0" : "=m"(value));
    return value;
}

static void write_mxcsr(unsigned value) {
    __asm__ volatile("ldmxcsr %0" : : "m"(value));
}

/* The MXCSR without its sticky exception flags (bits 0-5), which any
 * inexact operation sets. */
static unsigned control(unsigned mxcsr) {
    return mxcsr & ~0x3fu;
}

static volatile unsigned in_handler;
static void on_usr1(int sig) {
    (void)sig;
    in_handler = read_mxcsr();
    /* Changed here, and undone by sigreturn. */
    write_mxcsr((read_mxcsr() & ~ROUNDING) | DOWN);
}

/* Writes rounding down into the context the kernel restores. */
static void on_usr2(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    ucontext_t *uc = context;
    uc->uc_mcontext.fpregs->mxcsr = (uc->uc_mcontext.fpregs->mxcsr & ~ROUNDING) | DOWN;
}

static void *thread_mxcsr(void *arg) {
    (void)arg;
    return (void *)(uintptr_t)read_mxcsr();
}

/* Sets xmm5 and xmm13, makes system call `number`, and returns whether
 * both registers still hold their values. */
static int xmm_kept_across_syscall(long number) {
    uint64_t low, high;
    long result;
    __asm__ volatile("movq %[a], %%xmm5\n\t"
                     "movq %[b], %%xmm13\n\t"
                     "syscall\n\t"
                     "movq %%xmm5, %[low]\n\t"
                     "movq %%xmm13, %[high]"
                     : [low] "=r"(low), [high] "=r"(high), "=a"(result)
                     : [a] "r"(0x1122334455667788ull), [b] "r"(0x99aabbccddeeff00ull), "a"(number)
                     : "rcx", "r11", "xmm5", "xmm13", "memory");
    (void)result;
    return low == 0x1122334455667788ull && high == 0x99aabbccddeeff00ull;
}

/* Sets xmm7 and xmm15, reads a byte of `page` (a fault when the page is
 * fresh), and returns whether both registers still hold their values. */
static int xmm_kept_across_fault(volatile char *page) {
    uint64_t low, high;
    __asm__ volatile("movq %[a], %%xmm7\n\t"
                     "movq %[b], %%xmm15\n\t"
                     "movb (%[p]), %%al\n\t"
                     "movq %%xmm7, %[low]\n\t"
                     "movq %%xmm15, %[high]"
                     : [low] "=r"(low), [high] "=r"(high)
                     : [a] "r"(0x0123456789abcdefull), [b] "r"(0xfedcba9876543210ull), [p] "r"(page)
                     : "rax", "xmm7", "xmm15", "memory");
    return low == 0x0123456789abcdefull && high == 0xfedcba9876543210ull;
}

int main(void) {
    CHECK(control(read_mxcsr()) == DEFAULT_MXCSR, "a program starts with MXCSR %#x (%#x)", DEFAULT_MXCSR,
          read_mxcsr());
    unsigned own = (DEFAULT_MXCSR & ~ROUNDING) | TOWARD_ZERO;
    write_mxcsr(own);

    /* System calls, faults, time slices. */
    for (int i = 0; i < 1000; i++)
        syscall(SYS_getpid);
    CHECK(control(read_mxcsr()) == own, "MXCSR kept across system calls (%#x)", read_mxcsr());
    size_t len = 256 * 4096;
    char *pages = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED, "mmap");
    int kept = 1;
    for (size_t at = 0; at < len; at += 4096)
        kept &= xmm_kept_across_fault(pages + at);
    CHECK(kept, "xmm7 and xmm15 kept across 256 page faults");
    CHECK(xmm_kept_across_syscall(SYS_getpid), "xmm5 and xmm13 kept across a system call");
    for (size_t at = 0; at < len; at += 4096)
        pages[at] = 1;
    CHECK(control(read_mxcsr()) == own, "MXCSR kept across page faults (%#x)", read_mxcsr());
    volatile unsigned long spin = 0;
    for (unsigned long i = 0; i < 50000000ul; i++)
        spin += i;
    CHECK(control(read_mxcsr()) == own, "MXCSR kept across a long computation (%#x)", read_mxcsr());

    /* Signals. */
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    CHECK(control(in_handler) == DEFAULT_MXCSR, "a handler starts with MXCSR %#x (%#x)", DEFAULT_MXCSR, in_handler);
    CHECK(control(read_mxcsr()) == own, "the program's MXCSR is back after the handler (%#x)", read_mxcsr());
    struct sigaction action = {.sa_sigaction = on_usr2, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR2, &action, NULL);
    raise(SIGUSR2);
    CHECK(control(read_mxcsr()) == ((own & ~ROUNDING) | DOWN), "sigreturn loads the MXCSR of the saved context (%#x)",
          read_mxcsr());
    write_mxcsr(own);

    /* A forked child and a new thread. */
    pid_t child = fork();
    if (child == 0)
        _exit(control(read_mxcsr()) == own ? 0 : 1);
    int status;
    CHECK(child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a forked child starts with its parent's MXCSR");
    pthread_t thread;
    void *result = NULL;
    CHECK(pthread_create(&thread, NULL, thread_mxcsr, NULL) == 0 && pthread_join(thread, &result) == 0, "a thread");
    CHECK(control((unsigned)(uintptr_t)result) == own, "a new thread starts with its creator's MXCSR (%#x)",
          (unsigned)(uintptr_t)result);
    return finish("sse_state");
}
