/*
 * A program of about 1.5 MiB: a 768 KiB initialized array, checked whole.
 * The large-initrd check packs 60 copies of it. Exits 0 when every byte
 * is as written.
 */
#include <stdio.h>

#define SIZE (768 * 1024)

static volatile unsigned char blob[SIZE] = {[0 ... SIZE - 1] = 0x5a};

int main(int argc, char **argv) {
    unsigned long wrong = 0;
    for (unsigned long i = 0; i < SIZE; i++) wrong += blob[i] != 0x5a;
    printf("%s: %d bytes checked, %lu wrong\n", argc > 0 ? argv[0] : "big", SIZE, wrong);
    return wrong != 0;
}
