/* run.c - see run.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "log.h"
#include "num.h"
#include "pools.h"
#include "run.h"
#include "strv.h"

static const char *qname(const run_t *r, int qidx)
{
    return r->cfg->queues[qidx].name;
}

int run_init(run_t *r, uv_loop_t *loop, struct spawner *spawner, const config_t *cfg,
             const handlers_t *handlers, lease_t *lease, stats_t *stats, const run_cbs_t *cbs)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->spawner = spawner;
    r->cfg = cfg;
    r->handlers = handlers;
    r->lease = lease;
    r->stats = stats;
    r->cbs = *cbs;
    r->child_env_base = child_env_allow_list();
    return r->child_env_base ? 0 : JOBD_ENOMEM;
}

void run_free(run_t *r)
{
    strv_free(r->child_env_base);
    r->child_env_base = NULL;
}

/* ---- the job's timer: its next deadline ---- */

static void on_timer_closed(uv_handle_t *h)
{
    job_t *j = h->data;
    j->timer_open = 0;
    j->run->cbs.kick(j->run->cbs.arg); /* lease may free it now */
}

static void on_job_timer(uv_timer_t *t);

static void arm(run_t *r, job_t *j, int64_t delay)
{
    if (!j->timer_open) {
        uv_timer_init(r->loop, &j->timer);
        j->timer.data = j;
        j->timer_open = 1;
    }
    uv_timer_start(&j->timer, on_job_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

static void disarm(job_t *j)
{
    if (j->timer_open && !uv_is_closing((uv_handle_t *)&j->timer))
        uv_close((uv_handle_t *)&j->timer, on_timer_closed);
}

/* ---- the end of a handler ---- */

/* The job is done running: its slot, its timer, its outcome. */
static void finish(run_t *r, job_t *j, job_outcome_t o)
{
    if (!j->running) return;
    j->running = 0;
    disarm(j);
    r->cbs.on_ended(r->cbs.arg, j, o);
}

/* The handler ended; map its ending and the stop reason to an outcome. */
static void ended(run_t *r, job_t *j, int ok, int stopped)
{
    job_outcome_t o = outcome_of_ending(j->stop_reason, ok, stopped);
    if (o == OUT_DROP) {
        log_msg(LOG_WARN, &j->log, "handler stopped: lease lost, outcome not reported");
    } else if (o == OUT_CANCELED) {
        job_set_error(j, "canceled");
    } else if (o == OUT_RETRY && j->stop_reason == STOP_TIMEOUT) {
        /* Keep what the handler left: an exec handler's output tails. */
        pthread_mutex_lock(&j->mu);
        char *ctx = j->error;
        j->error = NULL;
        pthread_mutex_unlock(&j->mu);
        job_set_error(j, "timeout after %lld ms%s%s", (long long)(j->deadline_ms - j->started_ms),
                      ctx ? ": " : "", ctx ? ctx : "");
        free(ctx);
    }
    finish(r, j, o);
}

/* ---- exec handlers ---- */

/* A handler's result or checkpoint jobd must refuse: the attempt fails
 * with the reason (not "succeeded" without it), and the handler is stopped
 * since nothing it reports from now on can count. */
static void refuse_output(run_t *r, job_t *j, const char *why)
{
    if (j->output_refused) return;
    j->output_refused = 1;
    job_set_error(j, "%s", why);
    log_msg(LOG_WARN, &j->log, "handler output refused: %s; failing the attempt", why);
    if (j->exec) exec_stop(j->exec, r->cfg->kill_grace_ms);
    if (j->pjob) pool_job_stop(j->pjob, 0);
}

static void on_invalid_line(run_t *r, job_t *j, const char *err)
{
    /* Counted every time; told once per attempt, so a handler that writes a
     * million bad lines cannot flood the log. */
    r->stats->invalid_lines++;
    if (j->invalid_lines++ == 0)
        log_msg(LOG_WARN, &j->log,
                "handler wrote an invalid protocol line (%s); later ones of this attempt "
                "are only counted in jobd_handler_invalid_lines_total",
                err);
    else
        log_msg(LOG_DEBUG, &j->log, "handler wrote an invalid protocol line (%s)", err);
}

static void on_exec_message(void *arg, hproto_msg_t *m)
{
    job_t *j = arg;
    run_t *r = j->run;
    if (m->kind == HPROTO_INVALID) {
        on_invalid_line(r, j, m->err);
        return;
    }
    if (m->kind == HPROTO_REFUSED) {
        refuse_output(r, j, m->err);
        return;
    }
    if (m->kind != HPROTO_MESSAGE || j->output_refused) return;
    /* The protocol's order for a line with several keys. */
    if (m->has & HPROTO_HAS_PROGRESS) jobd_job_progress(j, m->progress);
    if (m->has & HPROTO_HAS_CHECKPOINT) {
        job_store_checkpoint(j, m->checkpoint); /* steals the text */
        m->checkpoint = NULL;
        lease_journal_checkpoint(r->lease, j); /* committed by the pump */
        r->stats->checkpoints++;
        r->cbs.kick(r->cbs.arg);
    }
    if (m->has & HPROTO_HAS_RESULT) {
        pthread_mutex_lock(&j->mu);
        free(j->result);
        j->result = m->result; /* the last one wins */
        m->result = NULL;
        pthread_mutex_unlock(&j->mu);
    }
    if (m->has & HPROTO_HAS_LOG) log_msg(LOG_INFO, &j->log, "handler: %s", m->log);
}

/* Appends one tail section to the error: its bytes with anything that is
 * not UTF-8 (a tail may start inside a character) or is a NUL replaced by
 * '?', so the error stays one valid string of known length. */
static void error_section(char *out, size_t *len, const char *name, const char *tail, size_t n,
                          uint64_t total)
{
    int cut = n < total; /* decided before the trailing newline goes */
    while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    const char *nl = cut ? memchr(tail, '\n', n < 256 ? n : 256) : NULL;
    if (nl) { /* a cut tail starts on its first whole line */
        n -= (size_t)(nl + 1 - tail);
        tail = nl + 1;
    }
    if (!n) return;
    if (cut)
        *len += (size_t)sprintf(out + *len, "\n--- %s: last %zu of %llu bytes ---\n", name, n,
                                (unsigned long long)total);
    else
        *len += (size_t)sprintf(out + *len, "\n--- %s: %zu bytes ---\n", name, n);
    for (size_t i = 0; i < n;) {
        size_t ok = hproto_utf8_check(tail + i, n - i);
        for (size_t k = 0; k < ok; k++) {
            char ch = tail[i + k];
            if (ch == '\0') ch = '?';
            out[(*len)++] = ch;
        }
        i += ok;
        if (i < n) {
            out[(*len)++] = '?';
            i++;
        }
    }
    out[*len] = '\0';
}

/* The job's error: head, then the handler's stdout and stderr tails (v1 and
 * v2 alike); head alone if memory is short. */
static void set_error_with_tails(job_t *j, const char *head, const char *out, size_t out_len,
                                 uint64_t out_total, const char *err, size_t err_len,
                                 uint64_t err_total)
{
    char *e = malloc(strlen(head) + out_len + err_len + 256);
    if (!e) {
        job_set_error(j, "%s", head);
        return;
    }
    size_t len = (size_t)sprintf(e, "%s", head);
    error_section(e, &len, "stdout", out, out_len, out_total);
    error_section(e, &len, "stderr", err, err_len, err_total);
    job_set_error(j, "%s", e);
    free(e);
}

/* The failure context (handler-protocol.md): a first line saying why, then
 * the tail of stdout's output lines, then stderr's, last so that the error
 * ends where a traceback ends. Bounded: two tails of EXEC_TAIL_MAX and two
 * short headers. */
static void exit_error(job_t *j, const exec_exit_t *x)
{
    char head[256];
    pthread_mutex_lock(&j->mu);
    if (j->output_refused)
        snprintf(head, sizeof head, "%s", j->error ? j->error : "handler output refused");
    else if (x->term_signal)
        snprintf(head, sizeof head, "handler killed by signal %d", x->term_signal);
    else
        snprintf(head, sizeof head, "handler exited with status %lld", (long long)x->exit_status);
    pthread_mutex_unlock(&j->mu);
    set_error_with_tails(j, head, x->output_tail, x->output_len, x->output_total, x->stderr_tail,
                         x->stderr_len, x->stderr_total);
}

static void on_exec_exit(void *arg, const exec_exit_t *x)
{
    job_t *j = arg;
    j->exec = NULL;
    int ok = !j->output_refused && x->term_signal == 0 && x->exit_status == 0;
    int stopped =
        !j->output_refused && x->term_signal == 0 && x->exit_status == JOBD_HANDLER_STOPPED;
    if (!ok && !stopped) exit_error(j, x);
    ended(j->run, j, ok, stopped);
}

/* A formatted string (new), or NULL on out-of-memory. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* The handler's environment: the allow-list plus the job's variables.
 * NULL on out-of-memory. */
static char **handler_env(run_t *r, job_t *j)
{
    size_t n = 0;
    while (r->child_env_base[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    if (!env) return NULL;
    size_t k = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= !(env[k++] = strdup(r->child_env_base[i]));
    bad |= !(env[k++] = strf("JOBD_JOB_ID=%s", j->id));
    bad |= !(env[k++] = strf("JOBD_ATTEMPT=%d", j->attempt));
    bad |= !(env[k++] = strf("JOBD_QUEUE=%s", qname(r, j->qidx)));
    bad |= !(env[k++] = strf("JOBD_JOB_TYPE=%s", j->env.type));
    if (j->env.traceparent) bad |= !(env[k++] = strf("TRACEPARENT=%s", j->env.traceparent));
    if (bad) {
        for (size_t i = 0; i < k; i++)
            free(env[i]);
        free(env);
        return NULL;
    }
    return env;
}

static void start_failed(run_t *r, job_t *j, int rc);

/* exec_cbs_t.on_spawned: the child runs, or it could not be started. */
static void on_exec_spawned(void *arg, int rc)
{
    job_t *j = arg;
    run_t *r = j->run;
    if (rc < 0) {
        j->exec = NULL;
        if (j->stop_reason != STOP_NONE)
            ended(r, j, 0, 0); /* asked to stop before it ever ran */
        else
            start_failed(r, j, rc);
        return;
    }
    /* Guarantee 5 from the first moment: the process group and the lease go
     * into the handler process table (one pwrite, no fsync: procs.h), so
     * the input goes out at once; a restarted jobd stops the group and
     * releases the lease. Should that write fail, the held row goes into
     * the journal and the child gets its input only after the pump's group
     * commit (run_send_inputs): a jobd killed before that leaves a child
     * that reads end of file and never runs the job. */
    int recorded = !lease_ckpt_async(r->lease) || lease_record_proc(r->lease, j, exec_pid(j->exec),
                                                                    exec_start_ticks(j->exec)) == 0;
    if (j->stop_reason != STOP_NONE)
        exec_close_input(j->exec); /* asked to stop before it ran: no job for it */
    else if (recorded)
        exec_send_input(j->exec);
    else
        lease_journal(r->lease, j);
    r->cbs.kick(r->cbs.arg);
}

static int start_exec(run_t *r, job_t *j)
{
    json_t *in = json_pack("{s:s, s:s, s:s, s:i, s:O, s:O?}", "id", j->id, "type", j->env.type,
                           "queue", qname(r, j->qidx), "attempt", j->attempt, "payload",
                           j->env.payload, "checkpoint", j->resume);
    char *line = in ? json_dumps(in, JSON_COMPACT) : NULL;
    json_decref(in);
    char **env = line ? handler_env(r, j) : NULL;
    if (!env) {
        free(line);
        return UV_ENOMEM;
    }
    static const exec_cbs_t cbs = {on_exec_message, on_exec_exit, on_exec_spawned};
    j->invalid_lines = 0;
    j->output_refused = 0;
    int rc = exec_start(&j->exec, r->loop, r->spawner, j->handler->argv, env, line, strlen(line),
                        (size_t)r->cfg->max_output_bytes, &cbs, j);
    free(line);
    strv_free(env);
    return rc; /* on_exec_spawned goes on */
}

void run_send_inputs(run_t *r)
{
    for (job_t *j = r->lease->head; j; j = j->next)
        if (j->exec) exec_send_input(j->exec); /* once per handler */
}

/* ---- persistent handlers (pool.h, protocol v2) ---- */

/* The job's process answered done, died, or never took it. As for v1
 * (exit_error): why, then the job's output tails. */
static void done_error(job_t *j, const pool_done_t *d)
{
    char head[4096];
    pthread_mutex_lock(&j->mu);
    if (j->output_refused)
        snprintf(head, sizeof head, "%s", j->error ? j->error : "handler output refused");
    else if (d->status == POOL_FAILED)
        snprintf(head, sizeof head, "handler failed%s%s", d->error ? ": " : "",
                 d->error ? d->error : "");
    else if (d->why_died)
        snprintf(head, sizeof head, "handler process killed: %s", d->why_died);
    else if (d->term_signal)
        snprintf(head, sizeof head, "handler process killed by signal %d", d->term_signal);
    else
        snprintf(head, sizeof head, "handler process exited with status %lld",
                 (long long)d->exit_status);
    pthread_mutex_unlock(&j->mu);
    set_error_with_tails(j, head, d->output_tail, d->output_len, d->output_total, d->stderr_tail,
                         d->stderr_len, d->stderr_total);
}

static void on_pool_done(void *arg, const pool_done_t *d)
{
    job_t *j = arg;
    j->pjob = NULL;
    int ok = !j->output_refused && d->status == POOL_SUCCEEDED;
    int stopped = !j->output_refused && (d->status == POOL_STOPPED || d->status == POOL_UNSTARTED);
    if (!ok && !stopped) done_error(j, d);
    ended(j->run, j, ok, stopped);
}

/* Queues the job on its handler's pool; a process takes it when idle. No
 * journal write here: the pool's processes are journaled (a restarted jobd
 * kills them), and the job's row follows the built-ins' rule (a checkpoint,
 * or a second of running, see lease.h). */
static int start_pool_job(run_t *r, job_t *j)
{
    pool_t *p = pools_find(j->handler);
    if (!p) return UV_EAGAIN; /* its pool could not be set up: tried again, uncharged */
    json_t *in =
        json_pack("{s:s, s:s, s:s, s:i, s:O, s:O?, s:s?}", "id", j->id, "type", j->env.type,
                  "queue", qname(r, j->qidx), "attempt", j->attempt, "payload", j->env.payload,
                  "checkpoint", j->resume, "traceparent", j->env.traceparent);
    if (!in) return UV_ENOMEM;
    char *line = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    if (!line) return UV_ENOMEM;
    static const pool_cbs_t cbs = {on_exec_message, on_pool_done};
    j->invalid_lines = 0;
    j->output_refused = 0;
    int rc = pool_submit(p, &j->pjob, j->id, line, strlen(line), &cbs, j);
    free(line);
    return rc;
}

/* ---- built-in handlers ---- */

static void builtin_work(uv_work_t *req)
{
    job_t *j = req->data;
    j->work_rc = j->handler->builtin->run(j);
}

static void builtin_done(uv_work_t *req, int status)
{
    job_t *j = req->data;
    if (status == UV_ECANCELED) j->work_rc = JOBD_HANDLER_STOPPED;
    if (j->work_rc != JOBD_HANDLER_OK && j->work_rc != JOBD_HANDLER_STOPPED && !j->error)
        job_set_error(j, "built-in handler %s failed", j->handler->builtin->name);
    ended(j->run, j, j->work_rc == JOBD_HANDLER_OK, j->work_rc == JOBD_HANDLER_STOPPED);
}

static void start_builtin(run_t *r, job_t *j)
{
    j->work.data = j;
    j->ckpt_async = lease_ckpt_async(r->lease);
    if (j->handler->builtin->inline_ok) {
        builtin_work(&j->work);
        builtin_done(&j->work, 0);
        return;
    }
    if (uv_queue_work(r->loop, &j->work, builtin_work, builtin_done) < 0) {
        job_set_error(j, "could not start built-in handler");
        ended(r, j, 0, 0);
    }
}

/* ---- starting ---- */

void run_start(run_t *r, job_t *j)
{
    char err[512];
    j->run = r;
    j->running = 1;
    j->started_ms = jobd_now_ms();
    j->log = (log_job_t){.job_id = j->id, .queue = qname(r, j->qidx), .attempt = j->attempt};
    if (envelope_decode(j->raw_env, strlen(j->raw_env), &j->env, err, sizeof err) < 0) {
        /* Guarantee 7: bad input goes dead with the reason, nothing else lost. */
        job_set_error(j, "%s", err);
        finish(r, j, OUT_DEAD);
        return;
    }
    j->log.type = j->env.type;
    j->log.traceparent = j->env.traceparent;
    j->handler = handlers_find(r->handlers, j->env.type);
    if (!j->handler && r->cfg->unknown_type_tries > 0) {
        /* A rolling deploy: a newer worker may know the type. Hand it back
         * uncharged for a while; defer.lua ends it dead after the bound. */
        log_msg(LOG_INFO, &j->log, "no handler for job type \"%s\" here: passed on", j->env.type);
        job_set_error(j, "no handler for job type \"%s\"", j->env.type);
        j->defer_bound = r->cfg->unknown_type_tries;
        j->retry_ms = r->cfg->unknown_type_delay_ms;
        finish(r, j, OUT_DEFER);
        return;
    }
    if (!j->handler) {
        job_set_error(j, "unknown job type \"%s\": no handler on worker %s", j->env.type,
                      r->cfg->worker_id);
        finish(r, j, OUT_DEAD);
        return;
    }
    if (j->handler->resources) {
        /* It runs once its units of the cluster-wide limits are held (and
         * their rate allows); if they are not, it is deferred (run_defer),
         * not kept waiting in its slot. */
        j->res_state = 1;
        r->cbs.acquire(r->cbs.arg, j);
        return;
    }
    run_handler(r, j);
}

void run_defer(run_t *r, job_t *j, int64_t delay, const char *why)
{
    if (!j->running) return;
    job_set_error(j, "%s", why);
    j->defer_bound = 0;
    j->retry_ms = delay;
    finish(r, j, OUT_DEFER);
}

/* See run.h: no attempt charged, ever; released after RUN_SPAWN_TRIES or
 * once draining. Releasing at once instead would have this worker claim it
 * straight back: a busy loop of claim and release for as long as the
 * shortage lasts. */
static void spawn_later(run_t *r, job_t *j, int rc)
{
    j->spawn_tries++;
    j->deadline_ms = 0; /* the timeout counts from the handler's start */
    if (j->spawn_tries >= RUN_SPAWN_TRIES || r->draining) {
        log_msg(LOG_WARN, &j->log,
                "cannot start handler %s: %s (%d tries); lease released, attempt not charged",
                j->handler->argv[0], uv_strerror(rc), j->spawn_tries);
        j->spawn_waiting = 0;
        finish(r, j, OUT_RELEASE);
        return;
    }
    int64_t delay = 100LL << (j->spawn_tries - 1);
    if (j->spawn_tries == 1)
        log_msg(LOG_WARN, &j->log,
                "cannot start handler %s: %s; trying again with backoff, attempt not charged",
                j->handler->argv[0], uv_strerror(rc));
    j->spawn_waiting = 1;
    arm(r, j, delay < 5000 ? delay : 5000);
}

/* j's handler could not be started (rc: why). */
static void start_failed(run_t *r, job_t *j, int rc)
{
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_EAGAIN) {
        spawn_later(r, j, rc);
        return;
    }
    job_set_error(j, "cannot start handler %s: %s", j->handler->argv[0], uv_strerror(rc));
    log_msg(LOG_ERROR, &j->log, "cannot start handler %s: %s", j->handler->argv[0],
            uv_strerror(rc));
    finish(r, j, OUT_RETRY);
}

void run_handler(run_t *r, job_t *j)
{
    /* envelope_decode keeps timeout_s within 100 years; saturate anyway, so
     * that no envelope can overflow the deadline. */
    int64_t timeout =
        j->env.timeout_s ? num_mul_sat(j->env.timeout_s, 1000) : j->handler->timeout_ms;
    j->started_ms = jobd_now_ms();
    j->deadline_ms = timeout ? num_add_sat(j->started_ms, timeout) : 0;
    log_msg(LOG_DEBUG, &j->log, "job started");
    if (j->handler->builtin) {
        start_builtin(r, j);
    } else {
        int rc = j->handler->persistent ? start_pool_job(r, j) : start_exec(r, j);
        if (rc < 0) {
            start_failed(r, j, rc);
            return;
        }
    }
    /* Its timeout on its own timer (an inline built-in is done already). */
    if (j->running && j->deadline_ms) arm(r, j, j->deadline_ms - jobd_now_ms());
}

static void on_job_timer(uv_timer_t *t)
{
    job_t *j = t->data;
    run_t *r = j->run;
    if (!j->running) return;
    if (j->spawn_waiting) {
        j->spawn_waiting = 0;
        run_handler(r, j);
    } else if (j->deadline_ms && j->stop_reason == STOP_NONE) {
        log_msg(LOG_WARN, &j->log, "timeout: stopping the handler");
        run_stop(r, j, STOP_TIMEOUT);
    }
}

/* ---- stopping ---- */

void run_stop(run_t *r, job_t *j, job_stop_t why)
{
    job_request_stop(j, why);
    if (j->res_state == 1 || j->spawn_waiting) {
        j->spawn_waiting = 0;
        /* Never started: it ends now (drain: released; cancel: canceled;
         * lease lost: dropped), whatever its acquire call says later. */
        ended(r, j, 0, 0);
        return;
    }
    if (j->exec) exec_stop(j->exec, r->cfg->kill_grace_ms);
    /* A persistent handler gets a stop line; a timeout replaces its process. */
    if (j->pjob) pool_job_stop(j->pjob, why == STOP_TIMEOUT);
    /* Built-ins see the flag; a queued uv_work that has not started yet is
     * canceled outright (its done callback then reports it stopped). */
    if (!j->exec && j->handler && j->handler->builtin && !j->handler->builtin->inline_ok)
        uv_cancel((uv_req_t *)&j->work);
}

void run_stop_all(run_t *r, job_stop_t why)
{
    for (job_t *j = r->lease->head, *next; j; j = next) {
        next = j->next; /* run_stop may end (and retire) j */
        if (j->running) run_stop(r, j, why);
    }
}
