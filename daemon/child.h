/* child.h - starts one handler process: how, and with what of jobd.
 *
 * DESIGN: the child is spawned with posix_spawn (glibc: clone with CLONE_VM
 * and CLONE_VFORK, so neither the daemon's page tables are copied nor its
 * pages made copy-on-write) in a new session (POSIX_SPAWN_SETSID), so it
 * leads its own process group and a stop can signal the whole group. Its
 * stdin, stdout and stderr are pipes whose other ends, like every descriptor
 * of jobd, are close-on-exec; the child also closes everything above 2
 * before execve (closefrom), and its signal mask and dispositions are reset
 * (jobd ignores SIGPIPE). Its exit can be watched through a pidfd. It is
 * registered with the subreaper (orphans.h) from the spawn on, so that only
 * its owner reaps it. Its start time, which tells it apart from a later
 * process with the same pid, comes from the clock read around the spawn: the
 * kernel stamps the child between the two reads, so when both fall in the
 * same clock tick, that tick is its start time, without reading
 * /proc/PID/stat (that read cost a tenth of jobd's own time per exec job).
 * Thread-safe: it touches only its arguments and the subreaper's registry,
 * so a spawner thread may call it (spawner.h). */
#ifndef JOBD_CHILD_H
#define JOBD_CHILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int pid;             /* also its process group and session id */
    int pidfd;           /* readable once it has exited; close-on-exec */
    int fds[3];          /* our ends: its stdin's write end, stdout's and stderr's read ends */
    int64_t start_ticks; /* as child_start_time(pid) gives it */
} child_t;

/* Starts argv[0] (execve, no shell) with env ("K=V", NULL-terminated).
 * Returns 0 with *c filled in, or a negative errno (nothing is left behind:
 * no process, no descriptor, no registration). */
int child_start(child_t *c, char *const argv[], char *const env[]);

/* Stops (SIGKILL to its group) and reaps a child nobody will watch, and
 * closes its descriptors. */
void child_abandon(child_t *c);

/* Reads /proc/PID/FILE into buf (at most len - 1 bytes, NUL-terminated).
 * Returns the bytes read, or -1 if there is no such process or file. */
int child_proc_read(int pid, const char *file, char *buf, size_t len);

/* The start time of process pid (field 22 of /proc/PID/stat, clock ticks
 * since boot), or -1 if there is no such process. With the pid it names one
 * process even after the pid is reused. */
int64_t child_start_time(int pid);

/* The variables of jobd's own environment a handler may see (PATH, HOME,
 * LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, USER, LOGNAME), copied, NULL-terminated
 * (free with strv_free). NULL on out-of-memory. */
char **child_env_allow_list(void);

#endif
