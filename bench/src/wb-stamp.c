/* wb-stamp: append this start's CLOCK_MONOTONIC time (ns) as one line to a file, then exit 0.
 * Usage: wb-stamp [FILE]; WB_STAMP_FILE, when set, names the file instead (runit and s6 run
 * it as ./run, and s6-supervise passes the service name as an argument).
 * One write(2) on an O_APPEND fd, so concurrent or consecutive starts never mix lines. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const char *path = getenv("WB_STAMP_FILE");
    if (!path && argc > 1) path = argv[1];
    if (!path) return 2;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return 3;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
    if (write(fd, buf, (size_t)n) != n) return 4;
    return 0;
}
