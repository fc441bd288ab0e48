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
#include "respawn.h"
#include "strv.h"

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
    int slot; /* its record in procs.h's table, -1: none */
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
    pool_stats_t st; /* started, jobs */
    respawn_t rs;
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

/* ---- job endings ---- */

static void pjob_free(pool_job_t *j)
{
    free(j->line);
    free(j);
}

/* Tells the job how it ended (the tails are the process's for this job). */
static void pjob_end(pool_job_t *j, proc_t *pr, const pool_done_t *in)
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
    pjob_free(j);
}

static void on_defer(uv_timer_t *t)
{
    pool_t *p = t->data;
    while (p->deferred) {
        pool_job_t *j = p->deferred;
        p->deferred = j->next;
        pjob_end(j, NULL, &(pool_done_t){.status = POOL_UNSTARTED});
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

static void on_proc_exit(void *arg, const exec_exit_t *x)
{
    proc_t *pr = arg;
    pool_t *p = pr->pool;
    pr->e = NULL;
    uv_timer_stop(&pr->timer);
    procs_clear(p->o.procs, pr->slot);
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
        const char *during = j ? " while running job " : (pr->jobs ? "" : " before it was ready");
        respawn_crash(&p->rs, p->type, what, pr->pid, during, j ? j->id : "", &pr->err_tail);
    }
    if (j && !p->closing)
        pjob_end(j, pr,
                 &(pool_done_t){.status = POOL_DIED,
                                .exit_status = x->exit_status,
                                .term_signal = x->term_signal,
                                .why_died = pr->why_killed});
    else if (j)
        pjob_free(j);
    pr->closing = 1;
    p->pending_closes++;
    uv_close((uv_handle_t *)&pr->timer, proc_free_cb);
    if (!p->closing) {
        if (crash) {
            /* Restart with backoff; the jobs wait in the queue meanwhile. */
            if (!p->restart_armed) {
                p->restart_armed = 1;
                uv_timer_start(&p->restart, on_restart,
                               (uint64_t)respawn_backoff_ms(&p->rs, p->o.backoff_ms), 0);
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
    respawn_job_done(&p->rs, p->type);
    if (pr->state == PROC_BUSY) pr->state = PROC_IDLE;
    pjob_end(j, pr, &(pool_done_t){.status = status, .error = error});
    exec_tail_reset(&pr->out_tail);
    exec_tail_reset(&pr->err_tail);
    char why[128];
    if (pr->state == PROC_IDLE && pr->e &&
        respawn_recycle(&p->rs, pr->pid, pr->jobs, p->o.max_jobs, p->o.max_rss_mb, why,
                        sizeof why)) {
        proc_retire(pr, why);
        fill(p);
    }
    dispatch(p);
}

/* A tagged line that is not the job's own: a late line of a job that
 * ended, or a wrong id. Invalid for the current job, if any; logged at
 * debug level. */
static void stale_line(proc_t *pr, const char *id)
{
    log_debug("handler %s: process %d wrote a line for job %s, which it is not running",
              pr->pool->type, pr->pid, id);
    if (!pr->job || !pr->job->cbs.on_message) return;
    hproto_msg_t m;
    memset(&m, 0, sizeof m);
    m.kind = HPROTO_INVALID;
    snprintf(m.err, sizeof m.err, "a line for a job this process is not running");
    pr->job->cbs.on_message(pr->job->arg, &m);
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

static void on_ready(proc_t *pr, int ok)
{
    pool_t *p = pr->pool;
    if (ok && pr->state == PROC_STARTING) {
        pr->state = PROC_IDLE;
        uv_timer_stop(&pr->timer);
        log_debug("handler %s: process %d ready", p->type, pr->pid);
        dispatch(p);
    } else {
        log_warn("handler %s: process %d wrote an unexpected ready line", p->type, pr->pid);
    }
}

/* One line the process wrote on stdout (v2, hproto.h). */
static void on_line(void *arg, const char *line, size_t len, size_t total, int cut)
{
    proc_t *pr = arg;
    pool_t *p = pr->pool;
    if (cut) { /* too long to parse: judged by its prefix, for the current job */
        hproto_msg_t m;
        hproto_parse_cut(line, len, total, p->o.max_value, &m);
        deliver(pr, &m, line, len, total);
        hproto_clear(&m);
        return;
    }
    hproto_line_t l;
    hproto_parse_v2(line, len, p->o.max_value, &l);
    if (l.kind == HPROTO_READY || l.kind == HPROTO_BAD_READY) {
        on_ready(pr, l.kind == HPROTO_READY);
    } else if (l.kind == HPROTO_TAGGED && (!l.id || !pr->job || strcmp(l.id, pr->job->id) != 0)) {
        stale_line(pr, l.id ? l.id : "(not a string)");
    } else {
        if (l.has_msg) deliver(pr, &l.msg, line, len, total);
        static const pool_status_t status[] = {POOL_SUCCEEDED, POOL_SUCCEEDED, POOL_FAILED,
                                               POOL_STOPPED};
        if (l.kind == HPROTO_TAGGED && l.done && pr->job) finish_job(pr, status[l.done], l.error);
    }
    hproto_line_clear(&l);
}

static void on_stderr(void *arg, const char *buf, size_t len)
{
    proc_t *pr = arg;
    exec_tail_add(&pr->err_tail, buf, len);
}

/* Records the process before it can get a job (pool.h): one pwrite. */
static void record_proc(pool_t *p, proc_t *pr)
{
    procs_rec_t r = {.pid = pr->pid, .start = exec_start_ticks(pr->e)};
    snprintf(r.type, sizeof r.type, "%s", p->type);
    if (p->o.procs) pr->slot = procs_put(p->o.procs, -1, &r);
}

static int start_proc(pool_t *p)
{
    proc_t *pr = calloc(1, sizeof *pr);
    if (!pr) return UV_ENOMEM;
    pr->pool = p;
    pr->slot = -1;
    exec_opts_t eo = {
        .argv = p->argv,
        .env = p->env,
        .max_value = p->o.max_value,
        .on_line = on_line,
        .on_stderr = on_stderr,
    };
    static const exec_cbs_t cbs = {NULL, on_proc_exit, NULL};
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
    record_proc(p, pr);
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
            respawn_crash(&p->rs, p->type, what, 0, NULL, NULL, NULL);
            p->restart_armed = 1;
            uv_timer_start(&p->restart, on_restart,
                           (uint64_t)respawn_backoff_ms(&p->rs, p->o.backoff_ms), 0);
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
    if (!p->type || !p->argv || !p->env) {
        strv_free(p->argv);
        strv_free(p->env);
        free(p->type);
        free(p);
        return UV_ENOMEM;
    }
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
        pjob_free(j);
    }
    while (p->deferred) {
        pool_job_t *j = p->deferred;
        p->deferred = j->next;
        pjob_free(j);
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
    s->crashes = p->rs.crashes;
    s->recycled = p->rs.recycled;
    s->crash_streak = p->rs.crash_streak;
    s->unhealthy = p->rs.unhealthy;
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

/* ---- at exit ---- */

/* Whatever happens to jobd, its pools' processes do not outlive it
 * unwatched: at exit every live process group is killed (a clean exit has
 * reaped them all already). */
static void kill_at_exit(void)
{
    for (pool_t *p = all_pools; p; p = p->next)
        for (proc_t *pr = p->procs; pr; pr = pr->next)
            if (pr->e) kill(-pr->pid, SIGKILL);
}
