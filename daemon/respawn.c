/* respawn.c - see respawn.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "respawn.h"

/* Resident set size of pid in MiB, or -1. */
static int64_t rss_mb(int pid)
{
    char buf[128];
    if (child_proc_read(pid, "statm", buf, sizeof buf) < 0) return -1;
    /* "size resident shared ...", in pages */
    char *end;
    strtoll(buf, &end, 10);
    long long resident = end != buf ? strtoll(end, &end, 10) : -1;
    if (resident < 0) return -1;
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE) / (INT64_C(1024) * 1024);
}

/* The last 200 bytes of a stderr tail on one line (for a log line). */
static void last_words(const exec_tail_t *t, char out[201])
{
    out[0] = '\0';
    size_t n = t->len < 200 ? t->len : 200;
    char *all = n && t->buf ? malloc(t->len) : NULL;
    if (!all) return;
    size_t got = exec_tail_copy(t, all);
    memcpy(out, all + got - n, n);
    out[n] = '\0';
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '"' || (unsigned char)*c < 0x20) *c = ' ';
    free(all);
}

void respawn_crash(respawn_t *r, const char *type, const char *what, int pid, const char *during,
                   const char *job, const exec_tail_t *err)
{
    if (pid) {
        char tail[201] = "";
        if (err) last_words(err, tail);
        log_warn("handler %s: process %d %s%s%s%s%s", type, pid, what, during ? during : "",
                 job ? job : "", *tail ? "; its stderr ends: " : "", tail);
    }
    r->crashes++;
    r->crash_streak++;
    if (r->crash_streak >= RESPAWN_CRASH_LOOP && !r->unhealthy) {
        r->unhealthy = 1;
        log_error("handler %s: crash loop: %d process failures in a row (last: %s); the type "
                  "is unhealthy (readiness fails) until a job completes; restarting with "
                  "backoff",
                  type, r->crash_streak, what);
    }
}

void respawn_job_done(respawn_t *r, const char *type)
{
    if (!r->crash_streak) return;
    if (r->unhealthy) log_info("handler %s: a job completed: the type is healthy again", type);
    r->crash_streak = 0;
    r->unhealthy = 0;
}

int64_t respawn_backoff_ms(const respawn_t *r, int64_t first_ms)
{
    int64_t d = first_ms > 0 ? first_ms : 100;
    for (int i = 1; i < r->crash_streak && d < RESPAWN_BACKOFF_CAP_MS; i++)
        d *= 2;
    return d < RESPAWN_BACKOFF_CAP_MS ? d : RESPAWN_BACKOFF_CAP_MS;
}

int respawn_recycle(respawn_t *r, int pid, int64_t jobs, int64_t max_jobs, int64_t max_rss_mb,
                    char *why, size_t whylen)
{
    if (max_jobs && jobs >= max_jobs) {
        snprintf(why, whylen, "ran max_jobs %lld jobs", (long long)max_jobs);
    } else {
        int64_t rss = max_rss_mb ? rss_mb(pid) : -1;
        if (!max_rss_mb || rss <= max_rss_mb) return 0;
        snprintf(why, whylen, "RSS %lld MiB over max_rss_mb %lld", (long long)rss,
                 (long long)max_rss_mb);
    }
    r->recycled++;
    return 1;
}
