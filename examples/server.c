/* A small TCP service: listens on 127.0.0.1 (any free port, written to the
 * file argv[1]), works between requests, and answers each client with its
 * number; it ends after argv[2] clients. Checkpoint it, stop it, restore it
 * later on another ISA: it listens on the same port again.
 *
 *   ./server port.txt 3 [pair]     ("pair": also hold a socket pair open,
 *                                    which a checkpoint cannot carry) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((noinline)) static unsigned long churn(unsigned long h, int i) {
    for (int k = 0; k < 2000; k++) h = (h ^ (unsigned long)(i + k)) * 1099511628211ul;
    return h;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: server PORTFILE CLIENTS [pair]\n");
        return 2;
    }
    int clients = atoi(argv[2]);
    int sp[2] = {-1, -1};
    if (argc > 3 && !strcmp(argv[3], "pair") && socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) {
        perror("socketpair");
        return 2;
    }
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (srv < 0 || setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(srv, (struct sockaddr *)&a, sizeof a) || listen(srv, 8) ||
        getsockname(srv, (struct sockaddr *)&a, &alen) || fcntl(srv, F_SETFL, O_NONBLOCK)) {
        perror("listen");
        return 2;
    }
    printf("listening\n");
    fflush(stdout);
    /* Written under another name and renamed: readers see the whole port. */
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", ntohs(a.sin_port)) < 0 || fclose(f) || rename(tmp, argv[1])) {
        perror(argv[1]);
        return 2;
    }
    unsigned long h = 0;
    for (int served = 0, i = 0; served < clients; i++) {
        h = churn(h, i);
        int c = accept(srv, 0, 0);
        if (c < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                perror("accept");
                return 2;
            }
            usleep(1000);
            continue;
        }
        served++;
        char msg[64];
        int n = snprintf(msg, sizeof msg, "hello %d\n", served);
        if (write(c, msg, (size_t)n) != n) perror("write");
        close(c);
        printf("served %d\n", served);
        fflush(stdout);
    }
    printf("done\n");
    return h == 42; /* keeps the work */
}
