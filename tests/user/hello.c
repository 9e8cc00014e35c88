/*
 * The start of a program: argc, argv, envp and the auxiliary vector as the
 * System V ABI lays them out, and output through stdio.
 * args: one two
 */
#define _GNU_SOURCE
#include "check.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(int argc, char **argv, char **envp) {
    printf("hello from %s with %d argument(s)\n", argv[0], argc - 1);
    CHECK(argc == 3, "run with two arguments (argc %d)", argc);
    CHECK(argc < 3 || (strcmp(argv[1], "one") == 0 && strcmp(argv[2], "two") == 0), "argv[1..] are one two");
    CHECK(argv[argc] == NULL, "argv ends with NULL");
    CHECK(envp != NULL, "envp is there");
    CHECK(getauxval(AT_PAGESZ) == 4096, "AT_PAGESZ 4096");
    CHECK(getauxval(AT_PHENT) == 56, "AT_PHENT 56");
    CHECK(getauxval(AT_PHNUM) > 0 && getauxval(AT_PHDR) != 0, "AT_PHDR/AT_PHNUM");
    CHECK(getauxval(AT_ENTRY) != 0, "AT_ENTRY");
    CHECK(getauxval(AT_SECURE) == 0, "AT_SECURE 0");
    const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
    CHECK(random != NULL, "AT_RANDOM");
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    CHECK(platform && strcmp(platform, "x86_64") == 0, "AT_PLATFORM x86_64");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn && strstr(execfn, "hello") != NULL, "AT_EXECFN names the program (%s)", execfn ? execfn : "");
    CHECK(((uintptr_t)__builtin_frame_address(0) & 7) == 0, "stack aligned");
    struct utsname u;
    CHECK(uname(&u) == 0 && strcmp(u.machine, "x86_64") == 0, "uname machine x86_64");
    CHECK(getpid() > 0 && getpid() == gettid(), "getpid == gettid in a single-threaded program");
    char *p = malloc(100000);
    CHECK(p != NULL, "malloc");
    memset(p, 1, 100000);
    free(p);
    return finish("hello");
}
