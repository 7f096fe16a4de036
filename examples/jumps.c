/* setjmp/longjmp across migrations: nested error handlers in the style of
 * Lua's protected calls. Buffers armed before a migration catch errors
 * raised after it. */
#include <setjmp.h>
#include <stdio.h>

struct handler {
    struct handler *prev;
    jmp_buf buf;
    volatile int status;
};

static struct handler *current;
static unsigned long sum;

__attribute__((noinline)) static void raise_error(int code) {
    current->status = code;
    longjmp(current->buf, 1);
}

/* Runs fn(arg); returns 0, or the code of an error it raised. */
__attribute__((noinline)) static int protected_call(void (*fn)(long), long arg) {
    struct handler h;
    h.status = 0;
    h.prev = current;
    current = &h;
    if (setjmp(h.buf) == 0)
        fn(arg);
    current = h.prev;
    return h.status;
}

__attribute__((noinline)) static void work(long n) {
    for (long i = 0; i < n; i++) {
        sum = sum * 31 + (unsigned long)i;
        if (i == n - 1 && n % 3 == 0)
            raise_error((int)(n % 7) + 1);
    }
}

__attribute__((noinline)) static void nested(long n) {
    int inner = protected_call(work, n); /* errors of work caught here */
    sum += (unsigned long)inner;
    if (n % 50 == 0)
        raise_error(100 + (int)(n / 10 % 10)); /* caught by main's handler */
    work(n / 2);
}

int main(void) {
    int caught = 0, total = 0;
    for (long n = 1; n <= 400; n++) {
        int st = protected_call(nested, n * 10);
        caught += st != 0;
        total += st;
        if (n % 40 == 0)
            printf("n=%ld caught=%d total=%d sum=%lu\n", n, caught, total, sum);
    }
    printf("done caught=%d total=%d sum=%lu\n", caught, total, sum);
    return 0;
}
