/* Types whose layout differs between ISAs, kept across migrations:
 *  - struct stat, in a global, on the heap and on the stack (hcc gives it one
 *    layout on every ISA and converts what musl fills);
 *  - a long double array on the stack (x86_fp80 on x86_64, fp128 on aarch64),
 *    read before the long calls and never after them: its slot migrates as
 *    dead bytes while the function's other sites migrate normally. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

static struct stat saved;

static int cmp_ld(const void *a, const void *b) {
    long double x = *(const long double *)a, y = *(const long double *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) static unsigned long mix(unsigned long h, unsigned long v) {
    for (int i = 0; i < 8; i++) h = (h ^ (v >> i)) * 1099511628211ul;
    return h;
}

static unsigned long summarize(int round) {
    long double acc[8];
    for (int i = 0; i < 8; i++) acc[i] = (long double)((round * 7 + i * 13) % 17) / 3;
    qsort(acc, 8, sizeof acc[0], cmp_ld);
    unsigned long key = (unsigned long)(acc[0] * 1000) ^ ((unsigned long)(acc[7] * 1000) << 16);
    unsigned long h = key;
    for (int k = 0; k < 300; k++) h = mix(h, key + (unsigned long)k);
    return h;
}

static void show(const char *what, const struct stat *st) {
    printf("%s: size %lld mode %o links %lu regular %d mtime %lld\n", what, (long long)st->st_size,
           (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink, S_ISREG(st->st_mode),
           (long long)st->st_mtim.tv_sec);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "layouts-example.txt";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0) { perror(path); return 2; }
    for (int i = 0; i < 100; i++) dprintf(fd, "row %d\n", i);
    fchmod(fd, 0640);
    close(fd);
    struct timespec when[2] = {{1600000000, 0}, {1600000000, 0}};
    utimensat(AT_FDCWD, path, when, 0);

    struct stat local;
    if (stat(path, &saved) || lstat(path, &local)) { perror(path); return 2; }
    struct stat *heap = malloc(sizeof *heap);
    fd = open(path, O_RDONLY);
    if (fstat(fd, heap) || fstatat(AT_FDCWD, path, &local, 0)) { perror(path); return 2; }
    close(fd);

    unsigned long total = 0;
    for (int round = 0; round < 60; round++) {
        total ^= summarize(round);
        if (round % 20 == 0) printf("round %d: %lu\n", round, total);
    }
    show("global", &saved);
    show("heap", heap);
    show("stack", &local);
    printf("total %lu\n", total);
    unlink(path);
    free(heap);
    return 0;
}
