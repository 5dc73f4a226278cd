/* wb-mini: the smallest supervisor that does the bench's work, as a practical limit for the
 * others: fork, pipe, read/write, waitpid. No config language, no control API, no state.
 *
 * Usage: wb-mini CONFIG
 * CONFIG has one service per line, fields separated by one tab:
 *     RESTART<TAB>LOG<TAB>PROGRAM<TAB>ARG...
 *   RESTART: "always" (start again at once when it exits) or "never";
 *   LOG    : a file that gets the program's stdout and stderr (appended), or "-" for
 *            /dev/null.
 *
 * Each program runs in its own session (so in its own process group), stdin /dev/null.
 * A logged program's output is copied from its pipe to its file with read(2) and write(2)
 * of at most 64 KiB, in one poll(2) loop that also reads a signalfd (SIGCHLD, SIGTERM,
 * SIGINT). On SIGTERM or SIGINT: SIGTERM to every service's process group; as each direct
 * child is reaped, SIGKILL to what is left of its group (a grandchild that stayed in it);
 * exit 0 once all are reaped. Every descriptor is close-on-exec: children get only 0, 1, 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define BUF (64 * 1024)

struct svc {
    char *argv[MAX_ARGS + 1];
    int always;
    int logfd;  /* -1: /dev/null */
    int pipefd; /* read end while the child's output is open, else -1 */
    pid_t pid;  /* 0: not running */
};

static struct svc *svcs;
static size_t nsvc;
static int stopping;
static sigset_t sigs;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void parse(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    size_t cap = 16;
    svcs = calloc(cap, sizeof *svcs);
    if (!svcs) die("calloc");
    char *line = NULL;
    size_t len = 0;
    while (getline(&line, &len, f) > 0) {
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        if (nsvc == cap) {
            cap *= 2;
            svcs = realloc(svcs, cap * sizeof *svcs);
            if (!svcs) die("realloc");
        }
        struct svc *s = &svcs[nsvc];
        memset(s, 0, sizeof *s);
        s->pipefd = -1;
        s->logfd = -1;
        char *save = NULL, *tok;
        char *restart = strtok_r(strdup(line), "\t", &save);
        char *log = strtok_r(NULL, "\t", &save);
        if (!restart || !log) {
            fprintf(stderr, "wb-mini: bad line: %s\n", line);
            exit(2);
        }
        s->always = strcmp(restart, "always") == 0;
        if (strcmp(log, "-") != 0) {
            s->logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (s->logfd < 0) die(log);
        }
        int n = 0;
        while (n < MAX_ARGS && (tok = strtok_r(NULL, "\t", &save))) s->argv[n++] = tok;
        if (n == 0) {
            fprintf(stderr, "wb-mini: no program: %s\n", line);
            exit(2);
        }
        nsvc++;
    }
    free(line);
    fclose(f);
}

static void start(struct svc *s) {
    int p[2] = {-1, -1};
    if (s->logfd >= 0 && pipe2(p, O_CLOEXEC) != 0) die("pipe2");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, &sigs, NULL);
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        int out = s->logfd >= 0 ? p[1] : null;
        dup2(out, 1);
        dup2(out, 2);
        execvp(s->argv[0], s->argv);
        _exit(127);
    }
    s->pid = pid;
    if (p[1] >= 0) {
        close(p[1]);
        if (s->pipefd >= 0) close(s->pipefd); /* the last run's pipe */
        s->pipefd = p[0];
    }
}

/* Copy what the pipe holds to the log; close it at EOF. */
static void drain(struct svc *s) {
    static char buf[BUF];
    ssize_t n = read(s->pipefd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return;
    if (n <= 0) {
        close(s->pipefd);
        s->pipefd = -1;
        return;
    }
    for (char *q = buf; n > 0;) {
        ssize_t w = write(s->logfd, q, (size_t)n);
        if (w < 0) {
            if (errno == EINTR) continue;
            break; /* a full disk: dropped */
        }
        q += w;
        n -= w;
    }
}

static void stop_all(void) {
    stopping = 1;
    for (size_t i = 0; i < nsvc; i++)
        if (svcs[i].pid > 0) kill(-svcs[i].pid, SIGTERM);
}

static int running(void) {
    for (size_t i = 0; i < nsvc; i++)
        if (svcs[i].pid > 0) return 1;
    return 0;
}

static void reap(void) {
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nsvc; i++) {
            struct svc *s = &svcs[i];
            if (s->pid != pid) continue;
            if (stopping) kill(-pid, SIGKILL);
            s->pid = 0;
            if (s->always && !stopping) start(s);
            break;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: wb-mini CONFIG\n");
        return 2;
    }
    parse(argv[1]);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0) die("sigprocmask");
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    if (sfd < 0) die("signalfd");
    for (size_t i = 0; i < nsvc; i++) start(&svcs[i]);
    struct pollfd *fds = calloc(nsvc + 1, sizeof *fds);
    struct svc **owner = calloc(nsvc + 1, sizeof *owner);
    if (!fds || !owner) die("calloc");
    for (;;) {
        if (stopping && !running()) return 0;
        nfds_t n = 0;
        fds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (size_t i = 0; i < nsvc; i++) {
            if (svcs[i].pipefd < 0) continue;
            owner[n] = &svcs[i];
            fds[n++] = (struct pollfd){.fd = svcs[i].pipefd, .events = POLLIN};
        }
        if (poll(fds, n, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        for (nfds_t i = 1; i < n; i++)
            if (fds[i].revents) drain(owner[i]);
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si &&
                (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
                stop_all();
            reap(); /* signals of one kind merge: reap every child that exited */
        }
    }
}
