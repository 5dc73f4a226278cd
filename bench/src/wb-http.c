/* wb-http: the smallest HTTP service, for the crash-to-port benchmark. Listens on
 * 127.0.0.1:PORT (SO_REUSEADDR, so that a restarted copy binds at once) and answers every
 * request with 200 and its own pid as the body, one connection at a time, forever.
 * Usage: wb-http PORT. Exits 1 if it cannot listen (the supervisor restarts it). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int port = atoi(argv[1]);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return 1;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 64) < 0) {
        perror("wb-http: listen");
        return 1;
    }
    char body[32];
    int blen = snprintf(body, sizeof body, "%d", (int)getpid());
    char resp[128];
    int rlen = snprintf(resp, sizeof resp,
                        "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", blen, body);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        /* Read the request head (up to a blank line or 4 KiB), then answer and close. */
        char buf[4096];
        size_t got = 0;
        while (got < sizeof buf - 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = 0;
            if (strstr(buf, "\r\n\r\n")) break;
        }
        if (write(c, resp, (size_t)rlen) < 0) { /* the client went away: nothing to do */ }
        close(c);
    }
}
