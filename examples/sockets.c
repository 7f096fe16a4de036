/* Pipes and sockets the program opened itself, kept across migrations: a
 * pipe with unread data in it, a socket pair, and a listening TCP socket
 * that a client connects to after the migration. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) static unsigned long churn(unsigned long h, int i) {
    for (int k = 0; k < 50; k++) h = (h ^ (unsigned long)(i + k)) * 1099511628211ul;
    return h;
}

int main(void) {
    int p[2], sp[2];
    if (pipe(p) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) { perror("pipe"); return 2; }
    write(p[1], "through the pipe", 16);
    write(sp[0], "through the socket pair", 23);
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) || listen(srv, 4) ||
        getsockname(srv, (struct sockaddr *)&a, &alen)) { perror("listen"); return 2; }

    unsigned long h = 0;
    for (int i = 0; i < 20000; i++) {
        h = churn(h, i);
        if (i % 5000 == 0) printf("step %d %lu\n", i, h);
    }
    char buf[64] = {0};
    printf("pipe: %.*s\n", (int)read(p[0], buf, sizeof buf), buf);
    printf("socket pair: %.*s\n", (int)read(sp[1], buf, sizeof buf), buf);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 2; }
    int s = accept(srv, 0, 0);
    if (s < 0) { perror("accept"); return 2; }
    write(c, "hello over tcp", 14);
    printf("tcp: %.*s\n", (int)read(s, buf, sizeof buf), buf);
    return 0;
}
