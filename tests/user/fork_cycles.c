/*
 * 10,000 cycles of fork, a child that writes a page (a copy-on-write
 * fault) and exits, and wait, after 100 to warm up; each cycle must end
 * with the child's exit status 0. MemFree is printed before and after.
 *
 * Whether memory leaks is judged by the kernel, not here (the host's
 * MemFree moves with everything else the host runs): on Nacre `cargo
 * xtask test` runs this program between `mem mark` and `mem since 4`,
 * which fails if more than 4 frames are missing afterwards (one frame
 * leaked a cycle would be 10,000).
 */
#define _GNU_SOURCE
#include "check.h"
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define CYCLES 10000

static char page[4096];

static long mem_free_kb(void) {
    char text[4096] = {0};
    FILE *file = fopen("/proc/meminfo", "r");
    if (!file)
        return -1;
    size_t got = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[got] = 0;
    char *line = strstr(text, "MemFree:");
    return line ? strtol(line + 8, NULL, 10) : -1;
}

static int cycles(int count) {
    for (int i = 0; i < count; i++) {
        pid_t child = fork();
        if (child < 0)
            return 0;
        if (child == 0) {
            page[i % sizeof page] = 1;
            _exit(0);
        }
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 0;
    }
    return 1;
}

int main(void) {
    page[0] = 1;
    CHECK(cycles(100), "100 cycles to warm up");
    long before = mem_free_kb();
    CHECK(cycles(CYCLES), "%d cycles of fork, exit and wait", CYCLES);
    long after = mem_free_kb();
    printf("fork_cycles: MemFree %ld kB before, %ld kB after\n", before, after);
    return finish("fork_cycles");
}
