/* Signal state set before a migration holds after it: handlers (SIGUSR2 is
 * the program's own), an ignored SIGPIPE, blocked signals raised before the
 * migration that stay pending until unblocked after it, and an alarm that
 * keeps its remaining time. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, usr2, alarms;
static void on_usr1(int s) { (void)s; usr1++; }
static void on_usr2(int s) { (void)s; usr2++; }
static void on_alarm(int s) { (void)s; alarms++; }

__attribute__((noinline)) static unsigned long churn(unsigned long h, int i) {
    for (int k = 0; k < 50; k++) h = (h ^ (unsigned long)(i + k)) * 1099511628211ul;
    return h;
}

int main(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, 0);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, 0);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, 0);
    signal(SIGPIPE, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, 0);
    alarm(100);
    raise(SIGUSR2); /* pending across the migrations below */

    unsigned long h = 0;
    for (int i = 0; i < 20000; i++) {
        h = churn(h, i);
        if (i % 5000 == 0) printf("step %d %lu\n", i, h);
    }
    raise(SIGUSR1);
    sigset_t pending;
    sigpending(&pending);
    printf("usr1 pending while blocked: %d, handled: %d\n", sigismember(&pending, SIGUSR1), (int)usr1);
    printf("usr2 pending since before the loop: %d, handled: %d\n", sigismember(&pending, SIGUSR2), (int)usr2);
    sigprocmask(SIG_UNBLOCK, &block, 0);
    printf("usr1 handled after unblocking: %d, usr2: %d\n", (int)usr1, (int)usr2);
    int p[2];
    if (pipe(p)) return 2;
    close(p[0]);
    errno = 0;
    ssize_t w = write(p[1], "x", 1);
    printf("write to a closed pipe: %zd, EPIPE %d\n", w, errno == EPIPE);
    unsigned left = alarm(0);
    printf("alarm still pending: %d, fired: %d\n", left > 0 && left <= 100, (int)alarms);
    return 0;
}
