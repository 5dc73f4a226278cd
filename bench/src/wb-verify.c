/* wb-verify: check a log written by wb-flood.
 * Usage: wb-verify FILE COUNT [timestamps]
 *   timestamps: each line must start with warden's 25-byte time prefix
 *               ("2024-05-01T12:00:00.123Z "), checked for its shape, then the line.
 * Prints one line: "intact=N lost=N dup=N bad=N reordered=N bytes=N"
 *   intact   : lines that are exactly a wb-flood line (100 bytes with '\n')
 *   lost     : numbers in [0, COUNT) never seen in an intact line
 *   dup      : intact lines whose number was seen before
 *   bad      : other lines (split, merged, prefixed or cut: anything not intact)
 *   reordered: intact lines whose number is not the previous one plus 1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE 100

static int intact(const char *s, size_t n, long *num) {
    if (n != LINE || s[LINE - 1] != '\n' || s[10] != ' ') return 0;
    long v = 0;
    for (int i = 0; i < 10; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    for (int i = 11; i < LINE - 1; i++)
        if (s[i] != 'x') return 0;
    *num = v;
    return 1;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ ": 9 is a digit, anything else itself. */
static const char STAMP[] = "9999-99-99T99:99:99.999Z ";
#define STAMP_LEN (sizeof STAMP - 1)

static int stamped(const char *s, size_t n) {
    if (n < STAMP_LEN) return 0;
    for (size_t i = 0; i < STAMP_LEN; i++) {
        if (STAMP[i] == '9' ? (s[i] < '0' || s[i] > '9') : s[i] != STAMP[i]) return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "timestamps") == 0)) {
        fprintf(stderr, "usage: wb-verify FILE COUNT [timestamps]\n");
        return 2;
    }
    size_t skip = argc == 4 ? STAMP_LEN : 0;
    long count = strtol(argv[2], NULL, 10);
    FILE *f = fopen(argv[1], "r");
    unsigned char *seen = calloc((size_t)count + 1, 1);
    if (!seen) return 3;
    long ok = 0, dup = 0, bad = 0, reord = 0, distinct = 0, prev = -1;
    long long bytes = 0;
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, f)) > 0) {
            bytes += n;
            long v;
            if ((skip && !stamped(line, (size_t)n)) || !intact(line + skip, (size_t)n - skip, &v)) {
                bad++;
                continue;
            }
            ok++;
            if (v != prev + 1) reord++;
            prev = v;
            if (v >= count) {
                bad++;
                continue;
            }
            if (seen[v]) dup++;
            else {
                seen[v] = 1;
                distinct++;
            }
        }
        fclose(f);
    }
    printf("intact=%ld lost=%ld dup=%ld bad=%ld reordered=%ld bytes=%lld\n", ok, count - distinct, dup, bad,
           reord, bytes);
    return 0;
}
