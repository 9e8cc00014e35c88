/*
 * The checks of Nacre's user-mode tests. Every test is a static Linux
 * program that `cargo xtask test` runs on the host Linux and on Nacre, and
 * whose outcome must be the same on both: Linux is the oracle.
 *
 * CHECK(condition, message...) counts a pass or prints a failure;
 * CHECK_ERR(call, errno) checks that a call returned -1 with that errno.
 * finish() prints the count and is main's return value (0: all passed);
 * maps_line() finds a mapping's line in /proc/self/maps.
 */
#ifndef NACRE_CHECK_H
#define NACRE_CHECK_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* Copies the line of /proc/self/maps that starts at address p (without its
 * newline) into line; returns 0, and line is empty, when there is none. */
__attribute__((unused)) static int maps_line(const void *p, char *line, size_t size) {
    static char buf[65536];
    int fd = open("/proc/self/maps", O_RDONLY);
    size_t len = 0;
    ssize_t n;
    while (fd >= 0 && len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += n;
    if (fd >= 0)
        close(fd);
    buf[len] = 0;
    char want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)p);
    line[0] = 0;
    for (char *at = buf; *at; at = strchr(at, '\n') ? strchr(at, '\n') + 1 : at + strlen(at)) {
        if (strncmp(at, want, strlen(want)) == 0) {
            size_t end = strcspn(at, "\n");
            snprintf(line, size, "%.*s", (int)end, at);
            return 1;
        }
    }
    return 0;
}

static int finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    fflush(stdout);
    return checks_failed ? 1 : 0;
}

#endif
