/* pools.c - see pools.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>

#include "log.h"
#include "pools.h"

typedef struct {
    const handler_t *h;
    pool_t *p;
} pool_entry_t;

static pool_entry_t *entries;
static size_t nentries;

static void kill_old(const char *type, int pid)
{
    log_warn("stopping handler %s process group %d left from an earlier run", type, pid);
}

/* A pool process a jobd before procs.h journaled. */
static void kill_journaled(void *arg, int pid, int64_t start, const char *type)
{
    journal_t *jn = arg;
    procs_rec_t r = {.pid = pid, .start = start, .this_boot = 1};
    if (procs_kill_if_same(&r)) kill_old(type ? type : "?", pid);
    journal_delete_proc(jn, pid);
}

/* A pool process an earlier jobd recorded (exec jobs' are lease's). */
static void kill_recorded(void *arg, const procs_rec_t *r)
{
    (void)arg;
    if (!r->id[0] && procs_kill_if_same(r)) kill_old(r->type, r->pid);
}

int pools_start(uv_loop_t *loop, const handlers_t *h, int concurrency, int64_t kill_grace_ms,
                size_t max_value, char *const *env_base, journal_t *jn)
{
    if (jn) {
        procs_each_old(journal_procs(jn), kill_recorded, NULL);
        if (journal_load_procs(jn, kill_journaled, jn) < 0)
            log_error("journal: reading the handler processes failed");
        journal_commit(jn);
    }
    int n = 0;
    for (size_t i = 0; i < h->n; i++)
        n += h->items[i].persistent;
    if (!n) return 0;
    free(entries);
    entries = calloc((size_t)n, sizeof *entries);
    nentries = 0;
    if (!entries) return -1;
    int rc = 0;
    for (size_t i = 0; i < h->n; i++) {
        const handler_t *hd = &h->items[i];
        if (!hd->persistent) continue;
        pool_opts_t o = {
            .type = hd->type,
            .argv = hd->argv,
            .env = env_base,
            .processes = handlers_persistent_processes(h, hd, concurrency),
            .max_jobs = hd->max_jobs,
            .max_rss_mb = hd->max_rss_mb,
            .start_timeout_ms = hd->start_timeout_ms,
            .kill_grace_ms = kill_grace_ms,
            .max_value = max_value,
            .procs = journal_procs(jn),
        };
        pool_t *p;
        if (pool_new(&p, loop, &o) < 0) {
            log_error("handler %s: cannot set up its process pool", hd->type);
            rc = -1;
            continue;
        }
        log_info("handler %s: persistent, %d processes (protocol v2)", hd->type, o.processes);
        entries[nentries++] = (pool_entry_t){hd, p};
    }
    return rc;
}

pool_t *pools_find(const handler_t *h)
{
    for (size_t i = 0; i < nentries; i++)
        if (entries[i].h == h) return entries[i].p;
    return NULL;
}

void pools_close(void)
{
    for (size_t i = 0; i < nentries; i++)
        if (entries[i].p) pool_close(entries[i].p);
    /* The pools free themselves once their processes are reaped. */
    free(entries);
    entries = NULL;
    nentries = 0;
}

int pools_not_ready(metrics_buf_t *b, const char *sep)
{
    int n = 0;
    for (size_t i = 0; i < nentries; i++) {
        pool_stats_t s;
        pool_stats(entries[i].p, &s);
        if (!s.unhealthy) continue;
        metrics_printf(b, "%s\"handler %s: crash loop (%d process failures in a row)\"",
                       n ? "," : sep, pool_type(entries[i].p), s.crash_streak);
        n++;
    }
    return n;
}

void pools_metrics(metrics_buf_t *b)
{
    if (!nentries) return;
    static const char *const names[] = {
        "jobd_pool_processes", "jobd_pool_processes_busy", "jobd_pool_process_starts_total",
        "jobd_pool_process_crashes_total", "jobd_pool_process_recycled_total"};
    static const char *const help[] = {
        "Processes of a persistent handler now.", "Processes running a job now.",
        "Processes started (first start, restarts and replacements).",
        "Processes that exited unasked or never got ready.",
        "Processes recycled at max_jobs or max_rss_mb."};
    for (int k = 0; k < 5; k++) {
        metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", names[k], help[k], names[k],
                       k < 2 ? "gauge" : "counter");
        for (size_t i = 0; i < nentries; i++) {
            pool_stats_t s;
            pool_stats(entries[i].p, &s);
            long long v = k == 0   ? s.processes
                          : k == 1 ? s.busy
                          : k == 2 ? s.started
                          : k == 3 ? s.crashes
                                   : s.recycled;
            metrics_printf(b, "%s{type=\"%s\"} %lld\n", names[k], pool_type(entries[i].p), v);
        }
    }
}
