/*
 * A program that is not position-independent: built with `gcc -static`, an
 * ET_EXEC linked at 0x400000, it runs where it is linked. Its code, data,
 * bss and heap work, the auxiliary vector names its own headers and entry,
 * and the pages below 64 KiB (Linux's default mmap_min_addr; the host's
 * may be set otherwise) stay unmapped.
 *
 * link: static
 */
#include "check.h"
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#define LINK_ADDRESS 0x400000UL

extern char __executable_start[];
extern void _start(void);

static int initialized = 42;
static int zeroed;

int main(void) {
    /* Where the linker put it, not moved. */
    CHECK((uintptr_t)__executable_start == LINK_ADDRESS, "linked at %#lx, runs at %p", LINK_ADDRESS,
          (void *)__executable_start);
    CHECK((uintptr_t)&main > LINK_ADDRESS && (uintptr_t)&main < LINK_ADDRESS + (16UL << 20), "main at %p",
          (void *)&main);
    const Elf64_Ehdr *header = (const Elf64_Ehdr *)__executable_start;
    CHECK(header->e_type == ET_EXEC, "an ET_EXEC (e_type %d)", header->e_type);
    CHECK(getauxval(AT_PHDR) == LINK_ADDRESS + header->e_phoff, "AT_PHDR %#lx", getauxval(AT_PHDR));
    CHECK(getauxval(AT_ENTRY) == (unsigned long)&_start, "AT_ENTRY %#lx, _start %p", getauxval(AT_ENTRY),
          (void *)&_start);
    CHECK(getauxval(AT_PHNUM) == header->e_phnum, "AT_PHNUM %lu", getauxval(AT_PHNUM));

    /* Data and bss where they were linked, writable. */
    CHECK(initialized == 42 && zeroed == 0, "data %d, bss %d", initialized, zeroed);
    initialized++;
    zeroed = 7;
    CHECK(initialized == 43 && zeroed == 7, "data and bss written");
    CHECK((uintptr_t)&zeroed > LINK_ADDRESS && (uintptr_t)&zeroed < LINK_ADDRESS + (16UL << 20), "bss at %p",
          (void *)&zeroed);

    /* The heap (brk) above the bss. */
    char *block = malloc(1 << 20);
    CHECK(block != NULL, "malloc 1 MiB");
    if (block) {
        block[0] = 1;
        block[(1 << 20) - 1] = 2;
        CHECK(block[0] + block[(1 << 20) - 1] == 3, "the heap reads back");
        free(block);
    }
    void *brk_now = sbrk(0);
    CHECK((uintptr_t)brk_now > (uintptr_t)&zeroed, "brk %p above the bss %p", brk_now, (void *)&zeroed);

    /* Low memory is the program's: a fixed mapping at mmap_min_addr works,
       between it and the program. */
    char text[32] = {0};
    int fd = open("/proc/sys/vm/mmap_min_addr", O_RDONLY);
    CHECK(fd >= 0 && read(fd, text, sizeof text - 1) > 0, "read mmap_min_addr");
    close(fd);
    unsigned long min_addr = strtoul(text, NULL, 10);
    CHECK(min_addr > 0 && min_addr <= 0x10000, "mmap_min_addr %lu", min_addr);
    unsigned long low = min_addr < 0x10000 ? 0x10000 : min_addr;
    char *page = mmap((void *)low, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(page == (char *)low, "MAP_FIXED at %#lx: %p", low, (void *)page);
    if (page == (char *)low) {
        page[0] = 'x';
        CHECK(page[0] == 'x', "the low page reads back");
        CHECK(munmap(page, 4096) == 0, "munmap the low page");
    }
    /* A hint of 0x1000 is not used: the page lands at or above mmap_min_addr. */
    char *hinted = mmap((void *)0x1000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(hinted != MAP_FAILED && (uintptr_t)hinted >= min_addr, "hint 0x1000 gave %p", (void *)hinted);
    if (hinted != MAP_FAILED)
        munmap(hinted, 4096);
    return finish("nonpie");
}
