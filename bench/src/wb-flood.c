/* wb-flood: write COUNT numbered lines of exactly 100 bytes to stdout as fast as it can,
 * in 64 KiB write(2) calls (whole lines are not kept together across calls).
 * Usage: wb-flood COUNT GATE STAMP
 *   GATE : wait (polling every 200 us) until this file exists before writing;
 *          lets the bench read the supervisor's CPU baseline first.
 *   STAMP: when done, this file gets "START_NS END_NS\n" (CLOCK_MONOTONIC).
 * Line i (0-based) is "%010d " followed by 88 'x' and '\n': 10+1+88+1 = 100 bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE 100
#define BUF (64 * 1024)

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int write_all(const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: wb-flood COUNT GATE STAMP\n");
        return 2;
    }
    long count = strtol(argv[1], NULL, 10);
    while (access(argv[2], F_OK) != 0) usleep(200);
    long long start = now_ns();
    static char buf[BUF + LINE];
    size_t used = 0;
    char line[LINE + 1];
    memset(line, 'x', LINE);
    line[LINE - 1] = '\n';
    for (long i = 0; i < count; i++) {
        char num[24];
        snprintf(num, sizeof num, "%010ld", i);
        memcpy(line, num, 10);
        line[10] = ' ';
        memcpy(buf + used, line, LINE);
        used += LINE;
        if (used >= BUF) {
            if (write_all(buf, BUF) != 0) return 1;
            memmove(buf, buf + BUF, used - BUF);
            used -= BUF;
        }
    }
    if (used && write_all(buf, used) != 0) return 1;
    long long end = now_ns();
    FILE *f = fopen(argv[3], "w");
    if (!f) return 3;
    fprintf(f, "%lld %lld\n", start, end);
    fclose(f);
    return 0;
}
