/* spawn_probe.c - the machine's spawn ceiling, for `make bench`: how many
 * /bin/true processes per second one process can start and reap when each
 * gets what jobd gives a handler (three pipes on stdin, stdout and stderr,
 * its own session, a reset signal mask), with `inflight` children running
 * at once. Two mechanisms: fork + execve (what uv_spawn does, waiting for
 * the exec through a pipe) and posix_spawn (glibc: clone(CLONE_VM |
 * CLONE_VFORK), no page-table copy).
 *
 *   spawn_probe fork|spawn N INFLIGHT [PROGRAM]
 *
 * Prints one JSON object: {"mode":..., "n":N, "inflight":K, "seconds":S,
 * "rate":R, "cpu_s": user+system of this process and its children}. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    pid_t pid;
    int fds[3]; /* our ends: stdin's write end, stdout's and stderr's read ends */
} child_t;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "spawn_probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Three close-on-exec pipes: p[0] stdin, p[1] stdout, p[2] stderr. */
static void make_pipes(int p[3][2])
{
    for (int i = 0; i < 3; i++)
        if (pipe2(p[i], O_CLOEXEC) < 0) die("pipe2");
}

static pid_t start_fork(char *const argv[], int p[3][2])
{
    /* As uv_spawn: a close-on-exec pipe tells the parent whether exec ran. */
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) < 0) die("pipe2");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(p[0][0], 0);
        dup2(p[1][1], 1);
        dup2(p[2][1], 2);
        execve(argv[0], argv, environ);
        int e = errno;
        ssize_t w = write(sync[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(sync[1]);
    int e;
    ssize_t r;
    while ((r = read(sync[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(sync[0]);
    if (r > 0) {
        errno = e;
        die("execve");
    }
    return pid;
}

static pid_t start_spawn(char *const argv[], int p[3][2])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0][0], 0);
    posix_spawn_file_actions_adddup2(&fa, p[1][1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[2][1], 2);
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        errno = rc;
        die("posix_spawn");
    }
    return pid;
}

static void start_one(child_t *c, int use_fork, char *const argv[])
{
    int p[3][2];
    make_pipes(p);
    c->pid = use_fork ? start_fork(argv, p) : start_spawn(argv, p);
    close(p[0][0]);
    close(p[1][1]);
    close(p[2][1]);
    c->fds[0] = p[0][1];
    c->fds[1] = p[1][0];
    c->fds[2] = p[2][0];
    close(c->fds[0]); /* /bin/true reads nothing: end of file at once */
    c->fds[0] = -1;
}

static void end_one(child_t *c)
{
    char buf[256];
    for (int i = 1; i < 3; i++) {
        while (read(c->fds[i], buf, sizeof buf) > 0)
            ;
        close(c->fds[i]);
    }
    c->pid = 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: spawn_probe fork|spawn N INFLIGHT [PROGRAM]\n");
        return 64;
    }
    int use_fork = strcmp(argv[1], "fork") == 0;
    long n = atol(argv[2]), inflight = atol(argv[3]);
    char *prog = argc > 4 ? argv[4] : "/bin/true";
    char *cargv[] = {prog, NULL};
    if (n < 1 || inflight < 1 || inflight > 1024) return 64;
    child_t *kids = calloc((size_t)inflight, sizeof *kids);
    long started = 0, done = 0;
    double t0 = mono_s();
    for (long i = 0; i < inflight && started < n; i++, started++)
        start_one(&kids[i], use_fork, cargv);
    while (done < n) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) die("waitpid");
        for (long i = 0; i < inflight; i++) {
            if (kids[i].pid != pid) continue;
            end_one(&kids[i]);
            done++;
            if (started < n) {
                start_one(&kids[i], use_fork, cargv);
                started++;
            }
            break;
        }
    }
    double dt = mono_s() - t0;
    struct rusage self, ch;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &ch);
    double cpu = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + ch.ru_utime.tv_sec +
                          ch.ru_stime.tv_sec) +
                 (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + ch.ru_utime.tv_usec +
                          ch.ru_stime.tv_usec) /
                     1e6;
    double pcpu = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                  (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
    printf("{\"cmd\":\"spawn\",\"mode\":\"%s\",\"n\":%ld,\"inflight\":%ld,\"seconds\":%.6f,"
           "\"rate\":%.1f,\"cpu_s\":%.4f,\"parent_cpu_s\":%.4f}\n",
           use_fork ? "fork" : "posix_spawn", n, inflight, dt, (double)n / dt, cpu, pcpu);
    free(kids);
    return 0;
}
