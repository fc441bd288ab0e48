/* child.c - see child.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "orphans.h"
#include "strv.h"

/* A descriptor of ours must not be 0, 1 or 2 (jobd started with one of them
 * closed): the child's dup2 onto 0..2 would overwrite it. */
static int above_stdio(int fd)
{
    if (fd > 2) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return moved;
}

static void close_fds(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* Three close-on-exec pipes, posix_spawn in a new session with stdio on
 * them. Returns 0 and our three ends, or a negative errno. */
static int spawn_child(char *const argv[], char *const env[], int *pid, int ours[3])
{
    int p[6] = {-1, -1, -1, -1, -1, -1}; /* in r/w, out r/w, err r/w */
    for (int i = 0; i < 3; i++) {
        if (pipe2(&p[(size_t)2 * (size_t)i], O_CLOEXEC) < 0) {
            int rc = -errno;
            close_fds(p, 6);
            return rc;
        }
    }
    for (int i = 0; i < 6; i++) {
        p[i] = above_stdio(p[i]);
        if (p[i] < 0) {
            int rc = -errno;
            close_fds(p, 6);
            return rc;
        }
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_adddup2(&fa, p[3], 1);
    posix_spawn_file_actions_adddup2(&fa, p[5], 2);
    /* Defence in depth: nothing above 2 crosses execve, close-on-exec or not. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all); /* jobd's SIG_IGN for SIGPIPE is not the child's */
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t child;
    int rc = posix_spawn(&child, argv[0], &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(p[0]);
    close(p[3]);
    close(p[5]);
    if (rc != 0) {
        close(p[1]);
        close(p[2]);
        close(p[4]);
        return -rc;
    }
    *pid = child;
    ours[0] = p[1];
    ours[1] = p[2];
    ours[2] = p[4];
    return 0;
}

/* CLOCK_BOOTTIME in clock ticks, as the kernel counts a process's start
 * time (field 22 of /proc/PID/stat). */
static int64_t boot_ticks(void)
{
    long hz = sysconf(_SC_CLK_TCK); /* from the auxiliary vector: no system call */
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return hz > 0 ? ns / (1000000000 / hz) : -1;
}

int child_start(child_t *c, char *const argv[], char *const env[])
{
    c->pidfd = -1;
    orphans_spawn_begin();
    int64_t lo = boot_ticks();
    int rc = spawn_child(argv, env, &c->pid, c->fds);
    int64_t hi = boot_ticks();
    /* Registered before the subreaper may look again, so it leaves the
     * child to us. */
    orphans_spawn_end(rc == 0 ? c->pid : 0);
    if (rc < 0) return rc;
    /* No pidfd (a kernel before 5.3, or out of descriptors), no watch: the
     * child must not run unwatched. */
    c->pidfd = pidfd_open(c->pid, 0); /* close-on-exec by definition */
    if (c->pidfd < 0) {
        rc = -errno;
        child_abandon(c);
        return rc;
    }
    c->start_ticks = lo >= 0 && lo == hi ? lo : child_start_time(c->pid);
    return 0;
}

void child_abandon(child_t *c)
{
    kill(-c->pid, SIGKILL);
    while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    orphans_disown(c->pid);
    if (c->pidfd >= 0) close(c->pidfd);
    c->pidfd = -1;
    close_fds(c->fds, 3);
}

int child_proc_read(int pid, const char *file, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (int)n;
}

int64_t child_start_time(int pid)
{
    char buf[1024];
    if (child_proc_read(pid, "stat", buf, sizeof buf) < 0) return -1;
    /* The command name (field 2) may hold spaces: count fields after ')'.
     * strtok_r: this runs on the spawner threads too. */
    char *p = strrchr(buf, ')'), *save = NULL;
    if (!p) return -1;
    long long v = -1;
    int field = 2;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (++field == 22) {
            v = strtoll(tok, NULL, 10);
            break;
        }
    return v;
}

char **child_env_allow_list(void)
{
    static const char *const allow[] = {"PATH=", "HOME=",   "LANG=", "LC_ALL=",  "LC_CTYPE=",
                                        "TZ=",   "TMPDIR=", "USER=", "LOGNAME=", NULL};
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **out = calloc(n + 1, sizeof *out);
    size_t k = 0;
    for (char **e = environ; out && *e; e++) {
        for (int i = 0; allow[i]; i++) {
            if (strncmp(*e, allow[i], strlen(allow[i])) != 0) continue;
            if (!(out[k++] = strdup(*e))) {
                strv_free(out);
                return NULL;
            }
        }
    }
    return out;
}
