/*
 * The checks of Nacre's user-mode tests. Every test is a static Linux
 * program that `cargo xtask test` runs on the host Linux and on Nacre, and
 * whose outcome must be the same on both: Linux is the oracle.
 *
 * CHECK(condition, message...) counts a pass or prints a failure;
 * CHECK_ERR(call, errno) checks that a call returned -1 with that errno.
 * finish() prints the count and is main's return value (0: all passed).
 */
#ifndef NACRE_CHECK_H
#define NACRE_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int checks_passed, checks_failed;

#define CHECK(condition, ...)                                                  \
    do {                                                                       \
        if (condition) {                                                       \
            checks_passed++;                                                   \
        } else {                                                               \
            checks_failed++;                                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                        \
            printf(__VA_ARGS__);                                               \
            printf("\n");                                                      \
            fflush(stdout);                                                    \
        }                                                                      \
    } while (0)

#define CHECK_ERR(call, expected)                                              \
    do {                                                                       \
        errno = 0;                                                             \
        long result_ = (long)(call);                                           \
        int errno_ = errno;                                                    \
        CHECK(result_ == -1 && errno_ == (expected),                           \
              "%s: returned %ld errno %d (%s), expected -1 errno %d (%s)",     \
              #call, result_, errno_, strerror(errno_), (expected),            \
              strerror(expected));                                             \
    } while (0)

static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    fflush(stdout);
    return checks_failed ? 1 : 0;
}

#endif
