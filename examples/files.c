/* Buffered stdout in flight, and a file written before and read after a
 * migration: the file is reopened at its offset, stdio buffers migrate.
 * A scratch file from tmpfile() (deleted while open) keeps its contents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "files-example.txt";
    FILE *out = fopen(path, "w");
    if (!out) { perror(path); return 2; }
    FILE *scratch = tmpfile();
    if (!scratch) { perror("tmpfile"); return 2; }
    unsigned long h = 5381;
    for (int i = 0; i < 2000; i++) {
        fprintf(out, "line %d value %lu\n", i, h);   /* buffered in the FILE */
        if (i % 10 == 0) fprintf(scratch, "%lu\n", h % 1000003);
        h = h * 33 + (unsigned long)i;
        if (i % 100 == 0) printf("wrote %d lines so far\n", i);   /* stdout buffered too */
    }
    fclose(out);
    FILE *in = fopen(path, "r");
    if (!in) { perror(path); return 2; }
    char line[128];
    unsigned long check = 0;
    int lines = 0;
    while (fgets(line, sizeof line, in)) {
        for (char *p = line; *p; p++) check = check * 131 + (unsigned char)*p;
        if (++lines % 250 == 0) printf("read %d lines, check %lu\n", lines, check);
    }
    fclose(in);
    printf("total %d lines, check %lu\n", lines, check);
    rewind(scratch);
    unsigned long v, sum = 0;
    int n = 0;
    while (fscanf(scratch, "%lu", &v) == 1) sum += v * (unsigned long)++n;
    fclose(scratch);
    printf("scratch file: %d values, sum %lu\n", n, sum);
    return lines == 2000 ? 0 : 1;
}
