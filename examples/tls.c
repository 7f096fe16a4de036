/* __thread variables, globals and static locals keep their values. */
#include <stdio.h>

__thread int tls_counter = 5;
__thread long tls_sum;
__thread char tls_name[16] = "thread-main";
int global_calls;

static int step(int i) {
    static int calls_here = 100;
    calls_here++;
    global_calls++;
    tls_counter += i % 3;
    tls_sum += (long)tls_counter * i;
    return calls_here;
}

int main(void) {
    int last = 0;
    for (int i = 0; i < 3000; i++) {
        last = step(i);
        if (i % 100 == 0)
            printf("%s i=%d counter=%d sum=%ld calls=%d/%d\n", tls_name, i, tls_counter, tls_sum, last, global_calls);
    }
    printf("final counter=%d sum=%ld calls=%d\n", tls_counter, tls_sum, global_calls);
    return tls_counter % 100;
}
