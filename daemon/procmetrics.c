/* procmetrics.c - see procmetrics.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "procmetrics.h"

typedef struct {
    unsigned long utime, stime; /* clock ticks */
    unsigned long long start;   /* clock ticks after boot */
    unsigned long vsize;        /* bytes */
    long rss;                   /* pages */
} proc_stat_t;

/* Reads /proc/self/stat. Returns 0, or -1. */
static int read_stat(proc_stat_t *s)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    /* The command name may hold anything, ')' too: the fields follow the
     * last one. From field 3 (state) on. */
    const char *p = strrchr(buf, ')');
    if (!p) return -1;
    int got = sscanf(p + 1,
                     " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                     "%*d %llu %lu %ld",
                     &s->utime, &s->stime, &s->start, &s->vsize, &s->rss);
    return got == 5 ? 0 : -1;
}

/* The descriptors open in this process, or -1. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd"); /* glibc opens it close-on-exec */
    if (!d) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* not the one reading the directory */
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts) < 0) return -1;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void gauge(metrics_buf_t *b, const char *name, const char *help, double v)
{
    metrics_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.15g\n", name, help, name, name, v);
}

void procmetrics_render(metrics_buf_t *b)
{
    proc_stat_t s;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (read_stat(&s) == 0 && tck > 0 && page > 0) {
        metrics_printf(b,
                       "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                       "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                       "process_cpu_seconds_total %.15g\n",
                       (double)(s.utime + s.stime) / (double)tck);
        gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", (double)s.vsize);
        gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
              (double)s.rss * (double)page);
        double now = clock_s(CLOCK_REALTIME), up = clock_s(CLOCK_BOOTTIME);
        if (now > 0 && up > 0)
            gauge(b, "process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.",
                  now - up + (double)s.start / (double)tck);
    }
    long fds = open_fds();
    if (fds >= 0) gauge(b, "process_open_fds", "Number of open file descriptors.", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        gauge(b, "process_max_fds", "Maximum number of open file descriptors.",
              (double)rl.rlim_cur);
}
