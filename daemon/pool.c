/* pool.c - see pool.h. */
#define _GNU_SOURCE
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobd/client.h"
#include "log.h"
#include "pool.h"

#define BACKOFF_CAP_MS 30000

typedef enum {
    PROC_STARTING = 0, /* spawned, no ready line yet */
    PROC_IDLE,         /* ready, no job */
    PROC_BUSY,         /* running pool->job */
    PROC_RETIRING      /* asked to go (recycle, kill, close): no more jobs */
} proc_state_t;

typedef struct proc {
    pool_t *pool;
    struct proc *next;
    exec_t *e; /* NULL once exec reported its exit */
    int pid;
    proc_state_t state;
    int expected_exit;      /* jobd asked it to go: not a crash */
    const char *why_killed; /* why jobd killed it (static text), for the job */
    int64_t jobs;
    pool_job_t *job;
    uv_timer_t timer;               /* start timeout, then a stopped job's kill grace */
    exec_tail_t out_tail, err_tail; /* of the current job (startup before the first) */
    int closing;
} proc_t;

struct pool_job {
    pool_t *pool;
    struct pool_job *next; /* queue, or the deferred-done list */
    proc_t *proc;          /* running on it, or NULL while queued */
    char id[JOBD_ID_LEN + 1];
    char *line; /* with its newline */
    size_t len;
    pool_cbs_t cbs;
    void *arg;
    int stop_sent, kill_sent;
};

struct pool {
    uv_loop_t *loop;
    struct pool *next; /* the daemon's pools */
    char *type;
    char **argv, **env;
    pool_opts_t o;
    proc_t *procs;
    int nprocs;
    pool_job_t *queue, *queue_tail;
    pool_job_t *deferred; /* ended unstarted: told from the defer timer */
    uv_timer_t restart;   /* starts missing processes (after a crash backoff) */
    uv_timer_t defer;     /* runs on_done of unstarted jobs outside the caller */
    int restart_armed;
    int closing, pending_closes;
    pool_stats_t st;
};

static pool_t *all_pools; /* every pool not freed yet, for kill_at_exit */

static void dispatch(pool_t *p);
static void fill(pool_t *p);
static void maybe_free(pool_t *p);

static void kill_at_exit(void);

static void on_restart(uv_timer_t *t)
{
    fill(t->data);
}

/* ---- helpers ---- */

static char **strv_copy(char *const *v, const char *const *extra)
{
    size_t n = 0, m = 0;
    while (v && v[n])
        n++;
    while (extra && extra[m])
        m++;
    char **out = calloc(n + m + 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(v[i]);
    for (size_t i = 0; i < m; i++)
        out[n + i] = strdup(extra[i]);
    return out;
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* Resident set size of pid in MiB, or -1. */
static int64_t rss_mb(int pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "size resident shared ...", in pages */
    char *end;
    strtoll(buf, &end, 10);
    long long resident = end != buf ? strtoll(end, &end, 10) : -1;
    if (resident < 0) return -1;
    return (int64_t)resident * (int64_t)sysconf(_SC_PAGESIZE) / (INT64_C(1024) * 1024);
}

static int64_t backoff_ms(const pool_t *p)
{
    int64_t d = p->o.backoff_ms > 0 ? p->o.backoff_ms : 100;
    for (int i = 1; i < p->st.crash_streak && d < BACKOFF_CAP_MS; i++)
        d *= 2;
    return d < BACKOFF_CAP_MS ? d : BACKOFF_CAP_MS;
}

/* ---- job endings ---- */

static void job_free(pool_job_t *j)
{
    free(j->line);
    free(j);
}

/* Tells the job how it ended (the tails are the process's for this job). */
static void job_end(pool_job_t *j, proc_t *pr, const pool_done_t *in)
{
    pool_done_t d = *in;
    char *linear = NULL;
    if (pr) {
        linear = malloc(pr->out_tail.len + pr->err_tail.len + 1);
        size_t nout = linear ? exec_tail_copy(&pr->out_tail, linear) : 0;
        size_t nerr = linear ? exec_tail_copy(&pr->err_tail, linear + nout) : 0;
        d.output_tail = linear ? linear : "";
        d.output_len = nout;
        d.output_total = pr->out_tail.total;
        d.stderr_tail = linear ? linear + nout : "";
        d.stderr_len = nerr;
        d.stderr_total = pr->err_tail.total;
    } else {
        d.output_tail = d.stderr_tail = "";
    }
    if (j->cbs.on_done) j->cbs.on_done(j->arg, &d);
    free(linear);
    job_free(j);
}

static void on_defer(uv_timer_t *t)
{
    pool_t *p = t->data;
    while (p->deferred) {
        pool_job_t *j = p->deferred;
        p->deferred = j->next;
        job_end(j, NULL, &(pool_done_t){.status = POOL_UNSTARTED});
    }
}

/* ---- processes ---- */

static void proc_free_cb(uv_handle_t *h)
{
    proc_t *pr = h->data;
    pool_t *p = pr->pool;
    exec_tail_reset(&pr->out_tail);
    exec_tail_reset(&pr->err_tail);
    free(pr);
    p->pending_closes--;
    maybe_free(p);
}

static void proc_unlink(pool_t *p, proc_t *pr)
{
    for (proc_t **pp = &p->procs; *pp; pp = &(*pp)->next) {
        if (*pp == pr) {
            *pp = pr->next;
            p->nprocs--;
            return;
        }
    }
}

/* Sends the process away: end of file on stdin, SIGTERM to its group, and
 * SIGKILL after the grace (exec_stop). It takes no more jobs. */
static void proc_retire(proc_t *pr, const char *why)
{
    if (!pr->e) return;
    if (pr->state != PROC_RETIRING) {
        pr->state = PROC_RETIRING;
        pr->expected_exit = 1;
        if (why) log_info("handler %s: recycling process %d (%s)", pr->pool->type, pr->pid, why);
    }
    exec_close_input(pr->e);
    exec_stop(pr->e, pr->pool->o.kill_grace_ms);
}

static void on_start_timeout(uv_timer_t *t)
{
    proc_t *pr = t->data;
    if (pr->state != PROC_STARTING || !pr->e) return;
    log_warn("handler %s: process %d did not say it was ready within %lld ms; killing it",
             pr->pool->type, pr->pid, (long long)pr->pool->o.start_timeout_ms);
    pr->state = PROC_RETIRING; /* a crash: expected_exit stays 0 */
    exec_kill(pr->e);
}

static void on_kill_grace(uv_timer_t *t)
{
    proc_t *pr = t->data;
    if (!pr->job || !pr->e) return;
    log_warn("handler %s: job %s did not stop within the kill grace; killing process %d",
             pr->pool->type, pr->job->id, pr->pid);
    pr->state = PROC_RETIRING;
    pr->expected_exit = 1;
    pr->why_killed = "did not stop within the kill grace";
    exec_kill(pr->e);
}

/* Marks a crash (unexpected exit, no ready line, spawn failure). */
static void count_crash(pool_t *p, const char *what)
{
    p->st.crashes++;
    p->st.crash_streak++;
    if (p->st.crash_streak >= POOL_CRASH_LOOP && !p->st.unhealthy) {
        p->st.unhealthy = 1;
        log_error("handler %s: crash loop: %d process failures in a row (last: %s); the type "
                  "is unhealthy (readiness fails) until a job completes; restarting with "
                  "backoff",
                  p->type, p->st.crash_streak, what);
    }
}

static void on_proc_exit(void *arg, const exec_exit_t *x)
{
    proc_t *pr = arg;
    pool_t *p = pr->pool;
    pr->e = NULL;
    uv_timer_stop(&pr->timer);
    if (p->o.jn) journal_delete_proc(p->o.jn, pr->pid);
    char what[128];
    if (x->term_signal)
        snprintf(what, sizeof what, "killed by signal %d", x->term_signal);
    else
        snprintf(what, sizeof what, "exited with status %lld", (long long)x->exit_status);
    pool_job_t *j = pr->job;
    pr->job = NULL;
    proc_unlink(p, pr);
    int crash = !pr->expected_exit && !p->closing;
    if (crash) {
        char tail[201] = "";
        size_t n = pr->err_tail.len < 200 ? pr->err_tail.len : 200;
        if (n && pr->err_tail.buf) {
            char *all = malloc(pr->err_tail.len);
            if (all) {
                size_t got = exec_tail_copy(&pr->err_tail, all);
                memcpy(tail, all + got - n, n);
                tail[n] = '\0';
                for (char *c = tail; *c; c++)
                    if (*c == '\n' || *c == '"' || (unsigned char)*c < 0x20) *c = ' ';
                free(all);
            }
        }
        log_warn("handler %s: process %d %s%s%s%s%s", p->type, pr->pid, what,
                 j ? " while running job " : (pr->jobs ? "" : " before it was ready"),
                 j ? j->id : "", *tail ? "; its stderr ends: " : "", tail);
        count_crash(p, what);
    }
    if (j && !p->closing)
        job_end(j, pr,
                &(pool_done_t){.status = POOL_DIED,
                               .exit_status = x->exit_status,
                               .term_signal = x->term_signal,
                               .why_died = pr->why_killed});
    else if (j)
        job_free(j);
    pr->closing = 1;
    p->pending_closes++;
    uv_close((uv_handle_t *)&pr->timer, proc_free_cb);
    if (!p->closing) {
        if (crash) {
            /* Restart with backoff; the jobs wait in the queue meanwhile. */
            if (!p->restart_armed) {
                p->restart_armed = 1;
                uv_timer_start(&p->restart, on_restart, (uint64_t)backoff_ms(p), 0);
            }
        } else if (!p->restart_armed) {
            fill(p);
        }
    }
}

/* The job on pr answered done (status, error lent). */
static void finish_job(proc_t *pr, pool_status_t status, const char *error)
{
    pool_t *p = pr->pool;
    pool_job_t *j = pr->job;
    if (pr->e) exec_drain_stderr(pr->e); /* written before the done line */
    pr->job = NULL;
    pr->jobs++;
    p->st.jobs++;
    uv_timer_stop(&pr->timer);
    if (p->st.crash_streak) {
        if (p->st.unhealthy)
            log_info("handler %s: a job completed: the type is healthy again", p->type);
        p->st.crash_streak = 0;
        p->st.unhealthy = 0;
    }
    if (pr->state == PROC_BUSY) pr->state = PROC_IDLE;
    job_end(j, pr, &(pool_done_t){.status = status, .error = error});
    exec_tail_reset(&pr->out_tail);
    exec_tail_reset(&pr->err_tail);
    if (pr->state == PROC_IDLE && pr->e) {
        int64_t rss = p->o.max_rss_mb ? rss_mb(pr->pid) : -1;
        char why[128];
        if (p->o.max_jobs && pr->jobs >= p->o.max_jobs) {
            snprintf(why, sizeof why, "ran max_jobs %lld jobs", (long long)p->o.max_jobs);
            p->st.recycled++;
            proc_retire(pr, why);
            fill(p);
        } else if (p->o.max_rss_mb && rss > p->o.max_rss_mb) {
            snprintf(why, sizeof why, "RSS %lld MiB over max_rss_mb %lld", (long long)rss,
                     (long long)p->o.max_rss_mb);
            p->st.recycled++;
            proc_retire(pr, why);
            fill(p);
        }
    }
    dispatch(p);
}

/* A tagged line that is not the job's own: a late line of a job that
 * ended, or a wrong id. Counted as invalid and logged at debug level. */
static void stale_line(proc_t *pr, const char *id)
{
    log_debug("handler %s: process %d wrote a line for job %s, which it is not running",
              pr->pool->type, pr->pid, id);
}

static void deliver(proc_t *pr, hproto_msg_t *m, const char *line, size_t len, uint64_t total)
{
    pool_job_t *j = pr->job;
    if (m->kind == HPROTO_OUTPUT) {
        exec_tail_t *t = &pr->out_tail;
        exec_tail_add(t, line, len);
        t->total += total - len;
        exec_tail_add(t, "\n", 1);
        return;
    }
    if (j && j->cbs.on_message) j->cbs.on_message(j->arg, m);
}

static int done_status(const char *s, pool_status_t *out)
{
    if (!s) return -1;
    if (strcmp(s, "succeeded") == 0)
        *out = POOL_SUCCEEDED;
    else if (strcmp(s, "failed") == 0)
        *out = POOL_FAILED;
    else if (strcmp(s, "stopped") == 0)
        *out = POOL_STOPPED;
    else
        return -1;
    return 0;
}

static void invalid(hproto_msg_t *m, const char *why)
{
    hproto_clear(m);
    memset(m, 0, sizeof *m);
    m->kind = HPROTO_INVALID;
    snprintf(m->err, sizeof m->err, "%s", why);
}

/* One line the process wrote on stdout (v2). */
static void on_line(void *arg, const char *line, size_t len, size_t total, int cut)
{
    proc_t *pr = arg;
    pool_t *p = pr->pool;
    hproto_msg_t m;
    if (cut) { /* too long to parse: judged by its prefix, for the current job */
        hproto_parse_cut(line, len, total, p->o.max_value, &m);
        deliver(pr, &m, line, len, total);
        hproto_clear(&m);
        return;
    }
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    json_t *o =
        i < len && line[i] == '{' ? json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *id = json_object_get(o, "id"), *ready = json_object_get(o, "ready");
    if (!json_is_object(o) || (!id && !ready)) {
        /* v1 keys without an id are refused in v2; anything else is output. */
        json_decref(o);
        hproto_parse(line, len, p->o.max_value, &m);
        if (m.kind == HPROTO_MESSAGE) invalid(&m, "a protocol v2 message needs the job's \"id\"");
        deliver(pr, &m, line, len, total);
        hproto_clear(&m);
        return;
    }
    if (ready) {
        if (json_is_true(ready) && json_object_size(o) == 1 && pr->state == PROC_STARTING) {
            pr->state = PROC_IDLE;
            uv_timer_stop(&pr->timer);
            log_debug("handler %s: process %d ready", p->type, pr->pid);
            dispatch(p);
        } else {
            log_warn("handler %s: process %d wrote an unexpected ready line", p->type, pr->pid);
        }
        json_decref(o);
        return;
    }
    const char *ids = json_string_value(id);
    if (!ids || !pr->job || strcmp(ids, pr->job->id) != 0) {
        stale_line(pr, ids ? ids : "(not a string)");
        memset(&m, 0, sizeof m);
        invalid(&m, "a line for a job this process is not running");
        if (pr->job) deliver(pr, &m, line, len, total);
        json_decref(o);
        return;
    }
    json_t *done = json_object_get(o, "done"), *error = json_object_get(o, "error");
    pool_status_t status = POOL_SUCCEEDED;
    int bad_done = done && done_status(json_string_value(done), &status) < 0;
    int bad_error = error && (!done || json_typeof(error) != JSON_STRING);
    const char *err_str = json_string_value(error); /* NULL unless a string */
    char *err_text = err_str ? strdup(err_str) : NULL;
    json_object_del(o, "id");
    json_object_del(o, "done");
    json_object_del(o, "error");
    memset(&m, 0, sizeof m);
    if (bad_done || bad_error) {
        invalid(&m, bad_done ? "\"done\" must be \"succeeded\", \"failed\" or \"stopped\""
                             : "\"error\" must be a string on a done line");
        deliver(pr, &m, line, len, total);
    } else if (json_object_size(o)) {
        /* The v1 keys beside the id: the v1 parser judges them. */
        char *rest = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
        if (rest) {
            hproto_parse(rest, strlen(rest), p->o.max_value, &m);
            if (m.kind == HPROTO_OUTPUT) invalid(&m, "unknown keys beside \"id\"");
            deliver(pr, &m, line, len, total);
            free(rest);
        }
    }
    hproto_clear(&m);
    json_decref(o);
    if (done && !bad_done && pr->job) finish_job(pr, status, err_text);
    free(err_text);
}

static void on_stderr(void *arg, const char *buf, size_t len)
{
    proc_t *pr = arg;
    exec_tail_add(&pr->err_tail, buf, len);
}

/* Records the process durably before it can get a job (pool.h). */
static void journal_proc(pool_t *p, proc_t *pr)
{
    if (!p->o.jn) return;
    int was_dirty = journal_dirty(p->o.jn);
    if (journal_put_proc(p->o.jn, pr->pid, exec_start_time(pr->pid), p->type) < 0) return;
    /* Nothing else pending: nobody waits on this commit but us. Otherwise
     * the writer of the pending rows kicks the worker, whose group commit
     * in this loop iteration takes ours too. */
    if (!was_dirty) journal_commit(p->o.jn);
}

static int start_proc(pool_t *p)
{
    proc_t *pr = calloc(1, sizeof *pr);
    if (!pr) return UV_ENOMEM;
    pr->pool = p;
    exec_opts_t eo = {
        .argv = p->argv,
        .env = p->env,
        .max_value = p->o.max_value,
        .on_line = on_line,
        .on_stderr = on_stderr,
    };
    static const exec_cbs_t cbs = {NULL, on_proc_exit};
    int rc = exec_spawn(&pr->e, p->loop, &eo, &cbs, pr);
    if (rc < 0) {
        free(pr);
        return rc;
    }
    pr->pid = exec_pid(pr->e);
    uv_timer_init(p->loop, &pr->timer);
    pr->timer.data = pr;
    pr->next = p->procs;
    p->procs = pr;
    p->nprocs++;
    p->st.started++;
    journal_proc(p, pr);
    uv_timer_start(&pr->timer, on_start_timeout, (uint64_t)p->o.start_timeout_ms, 0);
    return 0;
}

/* Starts processes until the pool has its number (retiring ones do not
 * count). A spawn failure is a crash: tried again with backoff. */
static void fill(pool_t *p)
{
    p->restart_armed = 0;
    if (p->closing) return;
    int live = 0;
    for (proc_t *pr = p->procs; pr; pr = pr->next)
        live += pr->state != PROC_RETIRING;
    while (live < p->o.processes) {
        int rc = start_proc(p);
        if (rc < 0) {
            char what[128];
            snprintf(what, sizeof what, "cannot start %s: %s", p->argv[0], uv_strerror(rc));
            log_warn("handler %s: %s", p->type, what);
            count_crash(p, what);
            p->restart_armed = 1;
            uv_timer_start(&p->restart, on_restart, (uint64_t)backoff_ms(p), 0);
            return;
        }
        live++;
    }
}

/* Hands queued jobs to idle processes. */
static void dispatch(pool_t *p)
{
    while (p->queue) {
        proc_t *idle = NULL;
        for (proc_t *pr = p->procs; pr; pr = pr->next)
            if (pr->state == PROC_IDLE && pr->e && !pr->job) idle = pr;
        if (!idle) return;
        pool_job_t *j = p->queue;
        p->queue = j->next;
        if (!p->queue) p->queue_tail = NULL;
        j->next = NULL;
        j->proc = idle;
        idle->job = j;
        idle->state = PROC_BUSY;
        exec_tail_reset(&idle->out_tail);
        exec_tail_reset(&idle->err_tail);
        if (exec_write(idle->e, j->line, j->len) < 0) {
            /* Its stdin is gone: it is exiting; the exit fails the job. */
            idle->state = PROC_RETIRING;
        }
    }
}

/* ---- the interface ---- */

int pool_new(pool_t **out, uv_loop_t *loop, const pool_opts_t *o)
{
    pool_t *p = calloc(1, sizeof *p);
    if (!p) return UV_ENOMEM;
    p->loop = loop;
    p->o = *o;
    if (p->o.processes < 1) p->o.processes = 1;
    p->type = strdup(o->type);
    p->o.type = p->type;
    char type_var[300];
    snprintf(type_var, sizeof type_var, "JOBD_JOB_TYPE=%s", o->type);
    const char *extra[] = {"JOBD_PROTOCOL=2", type_var, NULL};
    p->argv = strv_copy(o->argv, NULL);
    p->env = strv_copy(o->env, extra);
    uv_timer_init(loop, &p->restart);
    uv_timer_init(loop, &p->defer);
    p->restart.data = p->defer.data = p;
    static int registered;
    if (!registered && atexit(kill_at_exit) == 0) registered = 1;
    p->next = all_pools;
    all_pools = p;
    fill(p);
    *out = p;
    return 0;
}

int pool_submit(pool_t *p, pool_job_t **out, const char *id, const char *line, size_t len,
                const pool_cbs_t *cbs, void *arg)
{
    if (p->closing) return UV_ECANCELED;
    pool_job_t *j = calloc(1, sizeof *j);
    if (!j) return UV_ENOMEM;
    j->line = malloc(len + 1);
    if (!j->line) {
        free(j);
        return UV_ENOMEM;
    }
    memcpy(j->line, line, len);
    j->line[len] = '\n';
    j->len = len + 1;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->pool = p;
    j->cbs = *cbs;
    j->arg = arg;
    if (p->queue_tail)
        p->queue_tail->next = j;
    else
        p->queue = j;
    p->queue_tail = j;
    *out = j;
    dispatch(p);
    return 0;
}

void pool_job_stop(pool_job_t *j, int kill)
{
    pool_t *p = j->pool;
    proc_t *pr = j->proc;
    if (!pr) {
        /* Still queued: it ends unstarted, told from the defer timer. */
        pool_job_t *prev = NULL;
        for (pool_job_t *q = p->queue; q; prev = q, q = q->next) {
            if (q != j) continue;
            if (prev)
                prev->next = q->next;
            else
                p->queue = q->next;
            if (p->queue_tail == q) p->queue_tail = prev;
            j->next = p->deferred;
            p->deferred = j;
            uv_timer_start(&p->defer, on_defer, 0, 0);
            return;
        }
        return; /* deferred already */
    }
    if (kill && !j->kill_sent && pr->e) {
        j->kill_sent = 1;
        pr->why_killed = NULL;
        proc_retire(pr, NULL); /* SIGTERM now, SIGKILL after the grace */
        fill(p);               /* its replacement starts now */
        return;
    }
    if (j->stop_sent || j->kill_sent || !pr->e) return;
    j->stop_sent = 1;
    char line[JOBD_ID_LEN + 64];
    int n = snprintf(line, sizeof line, "{\"id\":\"%s\",\"stop\":true}\n", j->id);
    exec_write(pr->e, line, (size_t)n);
    uv_timer_stop(&pr->timer);
    uv_timer_start(&pr->timer, on_kill_grace, (uint64_t)p->o.kill_grace_ms, 0);
}

int pool_job_pid(const pool_job_t *j)
{
    return j->proc ? j->proc->pid : 0;
}

static void pool_closed_cb(uv_handle_t *h)
{
    pool_t *p = h->data;
    p->pending_closes--;
    maybe_free(p);
}

static void maybe_free(pool_t *p)
{
    if (!p->closing || p->procs || p->pending_closes) return;
    for (pool_t **pp = &all_pools; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    strv_free(p->argv);
    strv_free(p->env);
    free(p->type);
    free(p);
}

void pool_close(pool_t *p)
{
    if (p->closing) return;
    p->closing = 1;
    while (p->queue) {
        pool_job_t *j = p->queue;
        p->queue = j->next;
        job_free(j);
    }
    while (p->deferred) {
        pool_job_t *j = p->deferred;
        p->deferred = j->next;
        job_free(j);
    }
    p->queue_tail = NULL;
    for (proc_t *pr = p->procs; pr; pr = pr->next) {
        if (pr->job) pr->job->cbs = (pool_cbs_t){NULL, NULL};
        pr->expected_exit = 1;
        proc_retire(pr, NULL);
    }
    p->pending_closes += 2;
    uv_close((uv_handle_t *)&p->restart, pool_closed_cb);
    uv_close((uv_handle_t *)&p->defer, pool_closed_cb);
}

void pool_stats(const pool_t *p, pool_stats_t *s)
{
    *s = p->st;
    s->processes = s->ready = s->busy = 0;
    for (proc_t *pr = p->procs; pr; pr = pr->next) {
        s->processes++;
        s->ready += pr->state == PROC_IDLE;
        s->busy += pr->state == PROC_BUSY;
    }
}

const char *pool_type(const pool_t *p)
{
    return p->type;
}

/* ---- the daemon's pools ---- */

typedef struct {
    const handler_t *h;
    pool_t *p;
} pool_entry_t;

static pool_entry_t *entries;
static size_t nentries;

/* Whatever happens to jobd, its pools' processes do not outlive it
 * unwatched: at exit every live process group is killed (a clean exit has
 * reaped them all already). */
static void kill_at_exit(void)
{
    for (pool_t *p = all_pools; p; p = p->next)
        for (proc_t *pr = p->procs; pr; pr = pr->next)
            if (pr->e) kill(-pr->pid, SIGKILL);
}

static void kill_journaled(void *arg, int pid, int64_t start, const char *type)
{
    journal_t *jn = arg;
    if (pid > 0 && start > 0 && exec_start_time(pid) == start) {
        log_warn("journal: stopping handler %s process group %d left from an earlier run",
                 type ? type : "?", pid);
        kill(-pid, SIGKILL);
    }
    journal_delete_proc(jn, pid);
}

int pools_start(uv_loop_t *loop, const handlers_t *h, int concurrency, int64_t kill_grace_ms,
                size_t max_value, char *const *env_base, journal_t *jn)
{
    if (jn) {
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
            .jn = jn,
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
                       n ? "," : sep, entries[i].p->type, s.crash_streak);
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
            metrics_printf(b, "%s{type=\"%s\"} %lld\n", names[k], entries[i].p->type, v);
        }
    }
}
