/* The working directory and the umask set before a migration hold after it:
 * a file created afterwards by a relative name lands in the directory the
 * program changed into, with the permissions its umask allows. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((noinline)) static unsigned long churn(unsigned long h, int i) {
    for (int k = 0; k < 50; k++) h = (h ^ (unsigned long)(i + k)) * 1099511628211ul;
    return h;
}

int main(void) {
    mkdir("inner", 0777);
    if (chdir("inner")) { perror("inner"); return 2; }
    umask(027);
    unsigned long h = 0;
    for (int i = 0; i < 20000; i++) {
        h = churn(h, i);
        if (i % 5000 == 0) printf("step %d %lu\n", i, h);
    }
    FILE *f = fopen("made-after.txt", "w");
    if (!f) { perror("made-after.txt"); return 2; }
    fprintf(f, "%lu\n", h);
    fclose(f);
    struct stat st;
    if (stat("../inner/made-after.txt", &st)) { perror("stat"); return 2; }
    char cwd[512];
    const char *base = getcwd(cwd, sizeof cwd) ? strrchr(cwd, '/') + 1 : "?";
    printf("in %s, mode %o\n", base, (unsigned)(st.st_mode & 0777));
    return 0;
}
