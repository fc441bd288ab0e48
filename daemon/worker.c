/* worker.c - see worker.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "health.h"
#include "keys.h"
#include "log.h"
#include "num.h"
#include "registry.h"
#include "worker.h"

#define CLAIM_MAX 64    /* most jobs per claim call */
#define OUTCOME_MAX 256 /* most outcomes per report call */
#define TICK_MS 100     /* timeout resolution */

extern char **environ;

static void kick(worker_t *w);
static void stop_handler(job_t *j, job_stop_t why);
static void run_handler(worker_t *w, job_t *j);
static void resources_acquire(worker_t *w, job_t *j);
static void resources_release(worker_t *w, job_t *j);
static void maybe_close(worker_t *w);
static void close_all(worker_t *w);

/* ---- held list ---- */

static void held_add(worker_t *w, job_t *j)
{
    j->next = w->held;
    j->prev = NULL;
    if (w->held) w->held->prev = j;
    w->held = j;
    w->nheld++;
}

static void held_remove(worker_t *w, job_t *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        w->held = j->next;
    if (j->next) j->next->prev = j->prev;
    w->nheld--;
}

static job_t *held_find(worker_t *w, const char *id, const char *token)
{
    for (job_t *j = w->held; j; j = j->next)
        if (strcmp(j->id, id) == 0 && strcmp(j->token, token) == 0) return j;
    return NULL;
}

static const char *qname(const worker_t *w, int qidx)
{
    return w->cfg->queues[qidx].name;
}

/* ---- the journal ---- */

/* Makes sure the job has a journal row (its lease survives a crash). */
static void journal_job(worker_t *w, job_t *j)
{
    if (j->journaled || !w->jn) return;
    if (journal_put_held(w->jn, j->id, qname(w, j->qidx), j->token, j->attempt, j->started_ms) < 0)
        return;
    j->journaled = 1;
    if (j->exec) {
        int pid = exec_pid(j->exec);
        journal_put_pgid(w->jn, j->id, pid, exec_start_time(pid));
    }
}

static void journal_checkpoint(worker_t *w, job_t *j)
{
    journal_job(w, j);
    pthread_mutex_lock(&j->mu);
    int64_t seq = j->ckpt_seq;
    char *text = j->checkpoint ? strdup(j->checkpoint) : NULL;
    double progress = j->progress;
    pthread_mutex_unlock(&j->mu);
    if (seq > j->ckpt_journaled && journal_put_checkpoint(w->jn, j->id, seq, text, progress) == 0)
        j->ckpt_journaled = seq;
    free(text);
}

static const char *const outcome_names[] = {"", "ack", "retry", "dead", "canceled", "release", ""};

/* Guarantee 6: an outcome Redis has not taken yet waits in the journal. */
static void journal_outcome(worker_t *w, job_t *j)
{
    if (!w->jn) return;
    journal_job(w, j);
    pthread_mutex_lock(&j->mu);
    journal_put_outcome(w->jn, j->id, outcome_names[j->outcome], j->result, j->error, j->retry_ms,
                        j->checkpoint, j->progress);
    pthread_mutex_unlock(&j->mu);
}

static void journal_forget(worker_t *w, job_t *j)
{
    if (j->journaled && w->jn) journal_delete(w->jn, j->id);
    j->journaled = 0;
}

/* Commits the journal and tells built-ins waiting on a checkpoint. */
static void commit_journal(worker_t *w)
{
    if (!journal_dirty(w->jn)) return;
    if (journal_commit(w->jn) < 0) return;
    for (job_t *j = w->held; j; j = j->next) {
        if (j->ckpt_journaled > j->ckpt_durable) {
            pthread_mutex_lock(&j->mu);
            j->ckpt_durable = j->ckpt_journaled;
            pthread_cond_broadcast(&j->cv);
            pthread_mutex_unlock(&j->mu);
        }
    }
}

static void on_ckpt_async(uv_async_t *a)
{
    worker_t *w = a->data;
    for (job_t *j = w->held; j; j = j->next)
        if (j->running && j->ckpt_seq > j->ckpt_journaled) journal_checkpoint(w, j);
    commit_journal(w);
}

/* ---- outcomes ---- */

/* Full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]. */
static int64_t retry_delay(const worker_t *w, const job_t *j)
{
    /* The job's own setting, else the handler's, else jobd's. */
    int64_t base = j->env.retry_base_ms                        ? j->env.retry_base_ms
                   : (j->handler && j->handler->retry_base_ms) ? j->handler->retry_base_ms
                                                               : w->cfg->retry_base_ms;
    int64_t cap = j->env.retry_cap_ms                        ? j->env.retry_cap_ms
                  : (j->handler && j->handler->retry_cap_ms) ? j->handler->retry_cap_ms
                                                             : w->cfg->retry_cap_ms;
    int64_t d = base;
    for (int i = 1; i < j->attempt && d < cap; i++)
        d = num_mul_sat(d, 2); /* a cap near INT64_MAX must not overflow it */
    if (d > cap) d = cap;
    return d > 0 ? (int64_t)((double)random() / RAND_MAX * (double)d) : 0;
}

static int max_attempts(const job_t *j)
{
    /* The job's own setting, else the handler's, else the default. */
    if (j->env.max_attempts > 0) return j->env.max_attempts;
    if (j->handler && j->handler->max_attempts) return j->handler->max_attempts;
    return JOBD_DEFAULT_MAX_ATTEMPTS;
}

/* Records how the job ended; the report goes out from the kick. */
static void set_outcome(job_t *j, job_outcome_t o)
{
    worker_t *w = j->w;
    if (j->running) {
        j->running = 0;
        w->running--;
        w->queues[j->qidx].in_flight--;
        metrics_hist_observe(&w->durations, (double)(jobd_now_ms() - j->started_ms) / 1000.0);
    }
    if (j->res_state == 2) resources_release(w, j);
    j->res_state = 0;
    if (o == OUT_RETRY && j->attempt >= max_attempts(j)) o = OUT_DEAD;
    if (o == OUT_RETRY) j->retry_ms = retry_delay(w, j);
    j->outcome = o;
    if (o == OUT_DROP) {
        journal_forget(w, j);
        held_remove(w, j);
        job_free(j);
    } else if (j->journaled || !rq_ready(&w->rq)) {
        journal_outcome(w, j);
    }
    kick(w);
}

/* The handler ended; map its ending and the stop reason to an outcome. */
static void handler_ended(job_t *j, int ok, int stopped)
{
    switch (j->stop_reason) {
    case STOP_LEASE_LOST:
        log_msg(LOG_WARN, &j->log, "handler stopped: lease lost, outcome not reported");
        set_outcome(j, OUT_DROP);
        return;
    case STOP_CANCEL:
        if (!ok) {
            job_set_error(j, "canceled");
            set_outcome(j, OUT_CANCELED);
            return;
        }
        break;
    case STOP_TIMEOUT:
        if (!ok) {
            /* Keep what the handler left: an exec handler's output tails. */
            pthread_mutex_lock(&j->mu);
            char *ctx = j->error;
            j->error = NULL;
            pthread_mutex_unlock(&j->mu);
            job_set_error(j, "timeout after %lld ms%s%s",
                          (long long)(j->deadline_ms - j->started_ms), ctx ? ": " : "",
                          ctx ? ctx : "");
            free(ctx);
            set_outcome(j, OUT_RETRY);
            return;
        }
        break;
    case STOP_DRAIN:
        /* Asked to stop for a drain: anything but success is a release, so
         * the attempt is not charged and another worker resumes it. */
        if (!ok) {
            set_outcome(j, OUT_RELEASE);
            return;
        }
        break;
    case STOP_NONE:
        break;
    }
    set_outcome(j, ok ? OUT_ACK : (stopped ? OUT_RELEASE : OUT_RETRY));
}

/* ---- exec handlers ---- */

/* A handler's result or checkpoint jobd must refuse: the attempt fails
 * with the reason (not "succeeded" without it), and the handler is stopped
 * since nothing it reports from now on can count. */
static void refuse_output(job_t *j, const char *why)
{
    if (j->output_refused) return;
    j->output_refused = 1;
    job_set_error(j, "%s", why);
    log_msg(LOG_WARN, &j->log, "handler output refused: %s; failing the attempt", why);
    if (j->exec) exec_stop(j->exec, j->w->cfg->kill_grace_ms);
}

static void on_exec_message(void *arg, hproto_msg_t *m)
{
    job_t *j = arg;
    worker_t *w = j->w;
    if (m->kind == HPROTO_INVALID) {
        /* Counted every time; told once per attempt, so a handler that
         * writes a million bad lines cannot flood the log. */
        w->stats.invalid_lines++;
        if (j->invalid_lines++ == 0)
            log_msg(LOG_WARN, &j->log,
                    "handler wrote an invalid protocol line (%s); later ones of this attempt "
                    "are only counted in jobd_handler_invalid_lines_total",
                    m->err);
        else
            log_msg(LOG_DEBUG, &j->log, "handler wrote an invalid protocol line (%s)", m->err);
        return;
    }
    if (m->kind == HPROTO_REFUSED) {
        refuse_output(j, m->err);
        return;
    }
    if (m->kind != HPROTO_MESSAGE || j->output_refused) return;
    /* The protocol's order for a line with several keys. */
    if (m->has & HPROTO_HAS_PROGRESS) jobd_job_progress(j, m->progress);
    if (m->has & HPROTO_HAS_CHECKPOINT) {
        job_store_checkpoint(j, m->checkpoint); /* steals the text */
        m->checkpoint = NULL;
        journal_checkpoint(w, j); /* committed by the next kick */
        w->stats.checkpoints++;
        kick(w);
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
    while (n && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        n--;
    const char *nl = n < total ? memchr(tail, '\n', n < 256 ? n : 256) : NULL;
    if (nl) { /* a cut tail starts on its first whole line */
        n -= (size_t)(nl + 1 - tail);
        tail = nl + 1;
    }
    if (!n) return;
    if (n < total)
        *len += (size_t)sprintf(out + *len, "\n--- %s: last %zu of %llu bytes ---\n", name, n,
                                (unsigned long long)total);
    else
        *len += (size_t)sprintf(out + *len, "\n--- %s: %zu bytes ---\n", name, n);
    for (size_t i = 0; i < n;) {
        size_t ok = hproto_utf8_check(tail + i, n - i);
        for (size_t k = 0; k < ok; k++)
            out[(*len)++] = tail[i + k] ? tail[i + k] : '?';
        i += ok;
        if (i < n) {
            out[(*len)++] = '?';
            i++;
        }
    }
    out[*len] = '\0';
}

static void on_exec_exit(void *arg, const exec_exit_t *x)
{
    job_t *j = arg;
    j->exec = NULL;
    int ok = !j->output_refused && x->term_signal == 0 && x->exit_status == 0;
    int stopped =
        !j->output_refused && x->term_signal == 0 && x->exit_status == JOBD_HANDLER_STOPPED;
    if (!ok && !stopped) {
        /* The failure context (handler-protocol.md): a first line saying
         * why, then the tail of stdout's output lines, then stderr's, last
         * so that the error ends where a traceback ends. Bounded: two tails
         * of EXEC_TAIL_MAX and two short headers. */
        char head[256];
        pthread_mutex_lock(&j->mu);
        if (j->output_refused)
            snprintf(head, sizeof head, "%s", j->error ? j->error : "handler output refused");
        else if (x->term_signal)
            snprintf(head, sizeof head, "handler killed by signal %d", x->term_signal);
        else
            snprintf(head, sizeof head, "handler exited with status %lld",
                     (long long)x->exit_status);
        pthread_mutex_unlock(&j->mu);
        char *e = malloc(strlen(head) + x->output_len + x->stderr_len + 256);
        if (e) {
            size_t len = (size_t)sprintf(e, "%s", head);
            error_section(e, &len, "stdout", x->output_tail, x->output_len, x->output_total);
            error_section(e, &len, "stderr", x->stderr_tail, x->stderr_len, x->stderr_total);
            job_set_error(j, "%s", e);
            free(e);
        } else {
            job_set_error(j, "%s", head);
        }
    }
    handler_ended(j, ok, stopped);
}

static char **child_env(worker_t *w, job_t *j)
{
    size_t n = 0;
    while (w->child_env_base[n])
        n++;
    char **env = calloc(n + 6, sizeof *env);
    size_t k = 0;
    for (; k < n; k++)
        env[k] = strdup(w->child_env_base[k]);
    if (asprintf(&env[k++], "JOBD_JOB_ID=%s", j->id) < 0) env[k - 1] = NULL;
    if (asprintf(&env[k++], "JOBD_ATTEMPT=%d", j->attempt) < 0) env[k - 1] = NULL;
    if (asprintf(&env[k++], "JOBD_QUEUE=%s", qname(w, j->qidx)) < 0) env[k - 1] = NULL;
    if (asprintf(&env[k++], "JOBD_JOB_TYPE=%s", j->env.type) < 0) env[k - 1] = NULL;
    if (j->env.traceparent && asprintf(&env[k++], "TRACEPARENT=%s", j->env.traceparent) < 0)
        env[k - 1] = NULL;
    return env;
}

static void free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

static int start_exec(worker_t *w, job_t *j)
{
    json_t *in = json_pack("{s:s, s:s, s:s, s:i, s:O, s:O?}", "id", j->id, "type", j->env.type,
                           "queue", qname(w, j->qidx), "attempt", j->attempt, "payload",
                           j->env.payload, "checkpoint", j->resume);
    if (!in) return UV_ENOMEM;
    char *line = json_dumps(in, JSON_COMPACT);
    json_decref(in);
    char **env = child_env(w, j);
    static const exec_cbs_t cbs = {on_exec_message, on_exec_exit};
    j->invalid_lines = 0;
    j->output_refused = 0;
    int rc = exec_start(&j->exec, w->loop, j->handler->argv, env, line, strlen(line),
                        (size_t)w->cfg->max_output_bytes, &cbs, j);
    free(line);
    free_strv(env);
    if (rc < 0) return rc;
    /* Guarantee 5 from the first moment: the held row and the process group
     * go into the journal now, and the child gets its input only after the
     * kick's group commit made them durable (send_inputs). A jobd killed
     * before that leaves a child that reads end of file and never runs the
     * job; one killed after it is stopped by the next jobd (on_journal_row),
     * which releases the lease at once. */
    if (w->jn)
        journal_job(w, j);
    else
        exec_send_input(j->exec);
    kick(w);
    return 0;
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
    handler_ended(j, j->work_rc == JOBD_HANDLER_OK, j->work_rc == JOBD_HANDLER_STOPPED);
}

static void start_builtin(worker_t *w, job_t *j)
{
    j->work.data = j;
    if (w->jn) j->ckpt_async = &w->ckpt_async;
    if (j->handler->builtin->inline_ok) {
        builtin_work(&j->work);
        builtin_done(&j->work, 0);
        return;
    }
    if (uv_queue_work(w->loop, &j->work, builtin_work, builtin_done) < 0) {
        job_set_error(j, "could not start built-in handler");
        handler_ended(j, 0, 0);
    }
}

/* ---- starting claimed jobs ---- */

static void start_job(worker_t *w, job_t *j)
{
    char err[512];
    j->running = 1;
    w->running++;
    w->queues[j->qidx].in_flight++;
    j->started_ms = jobd_now_ms();
    j->log = (log_job_t){.job_id = j->id, .queue = qname(w, j->qidx), .attempt = j->attempt};
    if (envelope_decode(j->raw_env, strlen(j->raw_env), &j->env, err, sizeof err) < 0) {
        /* Guarantee 7: bad input goes dead with the reason, nothing else lost. */
        job_set_error(j, "%s", err);
        set_outcome(j, OUT_DEAD);
        return;
    }
    j->log.type = j->env.type;
    j->log.traceparent = j->env.traceparent;
    j->handler = handlers_find(w->handlers, j->env.type);
    if (!j->handler) {
        job_set_error(j, "unknown job type \"%s\": no handler on worker %s", j->env.type,
                      w->cfg->worker_id);
        set_outcome(j, OUT_DEAD);
        return;
    }
    if (j->handler->resources) {
        /* It runs once its units of the cluster-wide limits are held; until
         * then it waits in its slot, its lease kept alive like any other. */
        j->res_state = 1;
        resources_acquire(w, j);
        return;
    }
    run_handler(w, j);
}

#define SPAWN_TRIES 8 /* then the lease goes back; about 11 s of backoff before that */

/* An exec handler could not be spawned for want of descriptors or
 * processes (EMFILE, ENFILE, EAGAIN): jobd's trouble, not the job's, so no
 * attempt is charged, ever. The job keeps its slot and its lease (the
 * heartbeat extends it) and the ticker tries again with backoff; a stop
 * (drain, cancel, lease lost) ends it as one that never started. After
 * SPAWN_TRIES, or once draining, the lease goes back uncharged, at its old
 * place and with its checkpoint, for a worker with room to run it. Releasing
 * at once instead would have this worker claim it straight back: a busy
 * loop of claim and release for as long as the shortage lasts. */
static void spawn_later(worker_t *w, job_t *j, int rc)
{
    j->spawn_tries++;
    j->deadline_ms = 0; /* the timeout counts from the handler's start */
    if (j->spawn_tries >= SPAWN_TRIES || w->state != WORKER_RUNNING) {
        log_msg(LOG_WARN, &j->log,
                "cannot start handler %s: %s (%d tries); lease released, attempt not charged",
                j->handler->argv[0], uv_strerror(rc), j->spawn_tries);
        j->spawn_retry_at = 0;
        set_outcome(j, OUT_RELEASE);
        return;
    }
    int64_t delay = 100LL << (j->spawn_tries - 1);
    if (j->spawn_tries == 1)
        log_msg(LOG_WARN, &j->log,
                "cannot start handler %s: %s; trying again with backoff, attempt not charged",
                j->handler->argv[0], uv_strerror(rc));
    j->spawn_retry_at = jobd_now_ms() + (delay < 5000 ? delay : 5000);
}

static void run_handler(worker_t *w, job_t *j)
{
    /* envelope_decode keeps timeout_s within 100 years; saturate anyway, so
     * that no envelope can overflow the deadline. */
    int64_t timeout =
        j->env.timeout_s ? num_mul_sat(j->env.timeout_s, 1000) : j->handler->timeout_ms;
    j->started_ms = jobd_now_ms();
    j->deadline_ms = timeout ? num_add_sat(j->started_ms, timeout) : 0;
    log_msg(LOG_DEBUG, &j->log, "job started");
    if (j->handler->builtin) {
        start_builtin(w, j);
        return;
    }
    int rc = start_exec(w, j);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_EAGAIN) {
        spawn_later(w, j, rc);
    } else if (rc < 0) {
        job_set_error(j, "cannot start handler %s: %s", j->handler->argv[0], uv_strerror(rc));
        log_msg(LOG_ERROR, &j->log, "cannot start handler %s: %s", j->handler->argv[0],
                uv_strerror(rc));
        set_outcome(j, OUT_RETRY);
    }
}

/* ---- claiming ---- */

typedef struct {
    worker_t *w;
    int qidx;
    int asked;
    unsigned wakes; /* the queue's wake count when the claim went out */
} claim_req_t;

/* Logs and counts what claim.lua or reap.lua set aside (the reply's flat
 * array of triples: "dead" or "dropped", id, reason). Nothing of it ran. */
static void note_garbage(worker_t *w, int qidx, const redisReply *notes, const char *where)
{
    if (!notes || notes->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i + 2 < notes->elements; i += 3) {
        const redisReply *what = notes->element[i], *id = notes->element[i + 1],
                         *why = notes->element[i + 2];
        if (what->type != REDIS_REPLY_STRING || id->type != REDIS_REPLY_STRING ||
            why->type != REDIS_REPLY_STRING)
            continue;
        /* The id may be garbage too: at most 200 bytes of it in the log. */
        char idbuf[201];
        snprintf(idbuf, sizeof idbuf, "%.*s", (int)(id->len < 200 ? id->len : 200), id->str);
        log_job_t lj = {.job_id = idbuf, .queue = qname(w, qidx)};
        if (strcmp(what->str, "dead") == 0) {
            w->queues[qidx].garbage_dead++;
            log_msg(LOG_WARN, &lj, "job dead without running (%s): %s", where, why->str);
        } else {
            w->queues[qidx].garbage_dropped++;
            log_msg(LOG_WARN, &lj, "dropped a queue entry with no usable job record (%s): %s",
                    where, why->str);
        }
    }
}

static void on_claimed(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    claim_req_t *cr = arg;
    worker_t *w = cr->w;
    worker_queue_t *q = &w->queues[cr->qidx];
    w->claim_inflight = 0;
    /* next run_at, what was set aside, then 5 values per claimed job */
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || (r->elements - 2) % 5 != 0) {
        if (r)
            log_error("claim on queue %s failed: %s", qname(w, cr->qidx),
                      r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        free(cr);
        return; /* reconnect or the next kick retries */
    }
    long long next = r->element[0]->integer;
    q->next_sched_ms = next > 0 ? next : 0;
    note_garbage(w, cr->qidx, r->element[1], "claim");
    size_t n = (r->elements - 2) / 5;
    /* A short claim means empty, unless a wake-up arrived (on the other
     * connection) while the claim was in flight: then a job may have come
     * after the claim looked, and the queue must be tried again. */
    int woken = q->wakes != cr->wakes;
    q->empty = (int)n < cr->asked && !woken;
    q->exhausted = q->empty && next < 0;
    w->stats.claimed += (long long)n;
    for (size_t i = 0; i < n; i++) {
        redisReply **e = r->element + 2 + 5 * i;
        job_t *j = job_new(w);
        if (!j) break;
        j->qidx = cr->qidx;
        snprintf(j->id, sizeof j->id, "%.*s", (int)e[0]->len, e[0]->str);
        snprintf(j->token, sizeof j->token, "%.*s", (int)e[1]->len, e[1]->str);
        j->attempt = (int)e[2]->integer;
        j->raw_env = strndup(e[3]->str, e[3]->len);
        char *parked = w->parked ? journal_take_parked(w->jn, j->id) : NULL;
        if (parked) {
            /* Newer than what Redis gave: it never reached Redis. */
            w->parked--;
            j->resume = json_loads(parked, JSON_DECODE_ANY, NULL);
            j->checkpoint = parked;
            log_msg(LOG_INFO, &(log_job_t){.job_id = j->id, .queue = qname(w, j->qidx)},
                    "resuming from the local journal's checkpoint, newer than Redis's");
        } else if (e[4]->len) {
            j->resume = json_loadb(e[4]->str, e[4]->len, JSON_DECODE_ANY, NULL);
            j->checkpoint = strndup(e[4]->str, e[4]->len);
        }
        held_add(w, j);
        start_job(w, j);
    }
    free(cr);
    kick(w);
}

/* Smooth weighted round robin over queues that may have work and room. */
static int pick_queue(worker_t *w)
{
    int best = -1, total = 0;
    for (int i = 0; i < w->cfg->nqueues; i++) {
        const config_queue_t *cq = &w->cfg->queues[i];
        worker_queue_t *q = &w->queues[i];
        if (q->empty || (cq->limit && q->in_flight >= cq->limit)) continue;
        q->current += cq->weight;
        total += cq->weight;
        if (best < 0 || q->current > w->queues[best].current) best = i;
    }
    if (best >= 0) w->queues[best].current -= total;
    return best;
}

static void claim_more(worker_t *w)
{
    if (w->state != WORKER_RUNNING || w->claim_inflight || !rq_ready(&w->rq)) return;
    int free_slots = w->cfg->concurrency - w->running;
    if (free_slots <= 0) return;
    int qi = pick_queue(w);
    if (qi < 0) return;
    int n = free_slots < CLAIM_MAX ? free_slots : CLAIM_MAX;
    const config_queue_t *cq = &w->cfg->queues[qi];
    if (cq->limit && cq->limit - w->queues[qi].in_flight < n)
        n = cq->limit - w->queues[qi].in_flight;
    claim_req_t *cr = malloc(sizeof *cr);
    *cr = (claim_req_t){w, qi, n, w->queues[qi].wakes};
    proto_argv_t a;
    proto_argv_init(&a);
    proto_argv_adds(&a, w->cfg->worker_id);
    proto_argv_addll(&a, w->cfg->lease_ms);
    proto_argv_addll(&a, n);
    proto_argv_addll(&a, 1000);
    proto_argv_addll(&a, JOBD_ENVELOPE_MAX); /* bigger ones go dead unread */
    proto_argv_addll(&a, w->cfg->ttl_dead_ms);
    w->claim_inflight = 1;
    w->stats.claim_calls++;
    if (rq_script(&w->rq, PROTO_CLAIM, cq->name, &a, on_claimed, cr) < 0) {
        w->claim_inflight = 0;
        free(cr);
    }
    proto_argv_free(&a);
}

/* ---- reporting outcomes ---- */

typedef struct {
    worker_t *w;
    proto_script_t script;
    int n;
    char (*ids)[JOBD_ID_LEN + 1];
    char (*tokens)[48];
} report_t;

#define ERROR_LOG_MAX 500 /* bytes of a long error's end in its log line */

/* A long error (a failure's output tails) as its log line shows it: the
 * first line, which says why, then "…" and the last ERROR_LOG_MAX bytes,
 * where a traceback ends. buf holds ERROR_LOG_MAX + 256 bytes. */
static const char *error_for_log(const char *e, char *buf)
{
    size_t n = strlen(e);
    if (n <= ERROR_LOG_MAX + 200) return e;
    size_t first = strcspn(e, "\n");
    if (first > 160) first = 160;
    const char *end = e + n - ERROR_LOG_MAX;
    const char *nl = memchr(end, '\n', 120);
    if (nl) /* start on a whole line if one starts soon */
        end = nl + 1;
    while ((*end & 0xc0) == 0x80) /* else on a whole UTF-8 character */
        end++;
    snprintf(buf, ERROR_LOG_MAX + 256, "%.*s\n\xe2\x80\xa6%s", (int)first, e, end);
    return buf;
}

static const char *outcome_word(job_outcome_t o, long long res)
{
    if (o == OUT_ACK) return "succeeded";
    if (o == OUT_RELEASE) return res == 3 ? "canceled" : "released";
    return res == 1 ? "failed, retry scheduled" : (res == 2 ? "dead" : "canceled");
}

/* Guarantee 2's metric: extend, checkpoint sync and outcome report may all
 * find the same lost lease; it counts once. */
static void count_lease_lost(worker_t *w, job_t *j)
{
    if (j->lease_lost) return;
    j->lease_lost = 1;
    w->stats.lease_lost++;
}

static void on_reported(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    report_t *rp = arg;
    worker_t *w = rp->w;
    w->flush_inflight--;
    int ok = r && r->type == REDIS_REPLY_ARRAY && (int)r->elements == rp->n;
    if (r && !ok)
        log_error("reporting outcomes failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    for (int i = 0; i < rp->n; i++) {
        job_t *j = held_find(w, rp->ids[i], rp->tokens[i]);
        if (!j) continue;
        j->sent = 0;
        if (!ok) {
            /* Kept, in the journal too, and sent again once Redis is back. */
            if (!j->journaled) journal_outcome(w, j);
            continue;
        }
        long long res = r->element[i]->integer;
        if (res < 0) {
            /* Redis applied this very outcome before (the reply was lost
             * when the connection dropped, and the journal sent it again):
             * it stands, with the reply it got then. */
            res = -res;
            log_msg(LOG_INFO, &j->log, "outcome already applied before a reconnect");
        }
        if (res == 0 && j->outcome == OUT_RELEASE && j->journaled && w->jn &&
            journal_park(w->jn, j->id) == 1) {
            /* Its lease expired while Redis was away, so Redis may hand the
             * job out again with an older checkpoint: keep ours (Issue 4,
             * resume from the local journal when it holds a newer one). */
            j->journaled = 0;
            w->parked++;
            count_lease_lost(w, j);
            log_msg(LOG_WARN, &j->log,
                    "release rejected: lease token is stale; keeping the "
                    "journal's checkpoint in case this worker claims the job again");
        } else if (res == 0) {
            w->stats.stale_outcomes++;
            count_lease_lost(w, j);
            log_msg(LOG_WARN, &j->log,
                    "outcome rejected: lease token is stale (the lease was "
                    "lost, or Redis applied this outcome before a reconnect)");
        } else {
            if ((j->outcome == OUT_RELEASE && res == 1) || (j->outcome != OUT_ACK && res == 1)) {
                /* The job is back (released, or a retry is scheduled): the
                 * queue is not exhausted, whatever the last claim said. */
                worker_queue_t *q = &w->queues[j->qidx];
                q->exhausted = 0;
                if (j->outcome == OUT_RELEASE)
                    q->empty = 0;
                else if (!q->next_sched_ms || q->next_sched_ms > jobd_now_ms() + j->retry_ms)
                    q->next_sched_ms = jobd_now_ms() + j->retry_ms;
            }
            switch (j->outcome) {
            case OUT_ACK:
                w->stats.succeeded++;
                break;
            case OUT_RELEASE:
                w->stats.released++;
                break;
            default:
                w->stats.failed++;
                if (res == 1) w->stats.retried++;
                if (res == 2) w->stats.dead++;
                if (res == 3) w->stats.canceled++;
            }
            log_level_t lvl =
                j->outcome == OUT_ACK || j->outcome == OUT_RELEASE ? LOG_INFO : LOG_WARN;
            char ebuf[ERROR_LOG_MAX + 256];
            if (j->error && j->outcome != OUT_ACK)
                log_msg(lvl, &j->log, "job %s: %s", outcome_word(j->outcome, res),
                        error_for_log(j->error, ebuf));
            else
                log_msg(lvl, &j->log, "job %s", outcome_word(j->outcome, res));
        }
        journal_forget(w, j);
        held_remove(w, j);
        job_free(j);
    }
    free(rp->ids);
    free(rp->tokens);
    free(rp);
    kick(w);
}

static proto_script_t outcome_script(job_outcome_t o)
{
    return o == OUT_ACK ? PROTO_ACK : (o == OUT_RELEASE ? PROTO_RELEASE : PROTO_FAIL);
}

static void add_outcome_args(worker_t *w, proto_argv_t *a, job_t *j)
{
    proto_argv_adds(a, j->id);
    proto_argv_adds(a, j->token);
    pthread_mutex_lock(&j->mu);
    switch (j->outcome) {
    case OUT_ACK:
        proto_argv_adds(a, j->result);
        break;
    case OUT_RELEASE:
        proto_argv_adds(a, j->checkpoint);
        proto_argv_addd(a, j->progress);
        break;
    default:
        proto_argv_adds(a, j->error ? j->error : "failed");
        proto_argv_addll(a, j->outcome == OUT_RETRY      ? j->retry_ms
                            : j->outcome == OUT_CANCELED ? -2
                                                         : -1);
        proto_argv_addll(a, max_attempts(j)); /* the handler's, for a job that sets none */
    }
    pthread_mutex_unlock(&j->mu);
    (void)w;
}

/* Sends, per queue and script, one call with every unsent outcome. */
static void flush_outcomes(worker_t *w)
{
    if (!rq_ready(&w->rq)) return;
    static const proto_script_t scripts[] = {PROTO_ACK, PROTO_FAIL, PROTO_RELEASE};
    for (int qi = 0; qi < w->cfg->nqueues; qi++) {
        for (int s = 0; s < 3; s++) {
            report_t *rp = NULL;
            proto_argv_t a;
            proto_argv_init(&a);
            for (job_t *j = w->held; j; j = j->next) {
                if (j->qidx != qi || j->sent || j->outcome == OUT_NONE ||
                    outcome_script(j->outcome) != scripts[s])
                    continue;
                if (!rp) {
                    rp = calloc(1, sizeof *rp);
                    rp->w = w;
                    rp->script = scripts[s];
                    rp->ids = malloc(OUTCOME_MAX * sizeof *rp->ids);
                    rp->tokens = malloc(OUTCOME_MAX * sizeof *rp->tokens);
                    if (scripts[s] != PROTO_ACK) proto_argv_addll(&a, w->cfg->ttl_dead_ms);
                }
                add_outcome_args(w, &a, j);
                memcpy(rp->ids[rp->n], j->id, sizeof j->id);
                memcpy(rp->tokens[rp->n], j->token, sizeof j->token);
                rp->n++;
                j->sent = 1;
                if (rp->n == OUTCOME_MAX) break;
            }
            if (!rp) {
                proto_argv_free(&a);
                continue;
            }
            w->flush_inflight++;
            if (scripts[s] == PROTO_ACK) w->stats.ack_calls++;
            if (rq_script(&w->rq, scripts[s], qname(w, qi), &a, on_reported, rp) < 0) {
                w->flush_inflight--;
                for (int i = 0; i < rp->n; i++) {
                    job_t *j = held_find(w, rp->ids[i], rp->tokens[i]);
                    if (j) j->sent = 0;
                }
                free(rp->ids);
                free(rp->tokens);
                free(rp);
            }
            proto_argv_free(&a);
        }
    }
}

/* ---- the kick: claim and report once the current callbacks are done ---- */

/* Hands exec handlers started since the last commit their input. */
static void send_inputs(worker_t *w)
{
    for (job_t *j = w->held; j; j = j->next)
        if (j->exec) exec_send_input(j->exec); /* once per handler */
}

static void on_kick(uv_idle_t *h)
{
    worker_t *w = h->data;
    uv_idle_stop(h);
    commit_journal(w); /* group commit: one per loop iteration at most */
    send_inputs(w);    /* even if the commit failed: the job runs, as without a journal */
    if (w->flush_inflight == 0) flush_outcomes(w);
    claim_more(w);
    maybe_close(w);
}

static void kick(worker_t *w)
{
    if (w->state != WORKER_CLOSING) uv_idle_start(&w->kick, on_kick);
}

/* ---- leases, checkpoints, registry ---- */

typedef struct {
    worker_t *w;
    int n;
    char (*ids)[JOBD_ID_LEN + 1];
    char (*tokens)[48];
} extend_req_t;

static void on_extended(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    extend_req_t *er = arg;
    worker_t *w = er->w;
    if (r && r->type == REDIS_REPLY_ARRAY && (int)r->elements == er->n) {
        for (int i = 0; i < er->n; i++) {
            job_t *j = held_find(w, er->ids[i], er->tokens[i]);
            long long res = r->element[i]->integer;
            if (!j || res == 1) continue;
            if (res == 0) {
                /* Guarantee 2: fenced off. Stop the job here; report nothing. */
                if (j->sent) continue;       /* its outcome's reply will say so, and count it */
                if (j->lease_lost) continue; /* found out already, and stopped */
                count_lease_lost(w, j);
                log_msg(LOG_WARN, &j->log,
                        "lease lost: another worker may hold the job; "
                        "stopping it here");
                if (j->running)
                    stop_handler(j, STOP_LEASE_LOST);
                else if (!j->sent)
                    set_outcome(j, OUT_DROP); /* also forgets its journal row */
            } else if (res == 2 && j->running && j->stop_reason == STOP_NONE) {
                log_msg(LOG_INFO, &j->log, "cancel requested: stopping the handler");
                stop_handler(j, STOP_CANCEL);
            }
        }
    }
    free(er->ids);
    free(er->tokens);
    free(er);
}

static void extend_leases(worker_t *w)
{
    for (int qi = 0; qi < w->cfg->nqueues; qi++) {
        extend_req_t *er = NULL;
        proto_argv_t a;
        proto_argv_init(&a);
        int cap = 0;
        for (job_t *j = w->held; j; j = j->next) {
            if (j->qidx != qi) continue;
            if (!er) {
                er = calloc(1, sizeof *er);
                er->w = w;
                cap = w->nheld;
                er->ids = malloc((size_t)cap * sizeof *er->ids);
                er->tokens = malloc((size_t)cap * sizeof *er->tokens);
                proto_argv_addll(&a, w->cfg->lease_ms);
            }
            proto_argv_adds(&a, j->id);
            proto_argv_adds(&a, j->token);
            memcpy(er->ids[er->n], j->id, sizeof j->id);
            memcpy(er->tokens[er->n], j->token, sizeof j->token);
            er->n++;
        }
        if (er && rq_script(&w->rq, PROTO_EXTEND, qname(w, qi), &a, on_extended, er) < 0) {
            free(er->ids);
            free(er->tokens);
            free(er);
        }
        proto_argv_free(&a);
    }
}

static void on_heartbeat(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (!rq_ready(&w->rq)) return;
    extend_leases(w);
    registry_publish(w);
    for (job_t *j = w->held; j; j = j->next)
        if (j->running && j->res_state == 2) resources_acquire(w, j); /* renews the hold */
}

typedef struct {
    worker_t *w;
    int n;
    char (*ids)[JOBD_ID_LEN + 1];
    char (*tokens)[48];
} sync_req_t;

static void on_synced(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    sync_req_t *sr = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && (int)r->elements == sr->n) {
        for (int i = 0; i < sr->n; i++) {
            job_t *j = held_find(sr->w, sr->ids[i], sr->tokens[i]);
            if (j && r->element[i]->integer == 0 && j->running && !j->lease_lost) {
                count_lease_lost(sr->w, j);
                log_msg(LOG_WARN, &j->log, "checkpoint rejected: lease lost; stopping the job");
                stop_handler(j, STOP_LEASE_LOST);
            }
        }
    } else if (!r) {
        /* Not stored: mark them dirty again for the next sync. */
        for (int i = 0; i < sr->n; i++) {
            job_t *j = held_find(sr->w, sr->ids[i], sr->tokens[i]);
            if (j) {
                pthread_mutex_lock(&j->mu);
                j->ckpt_dirty = 1;
                pthread_mutex_unlock(&j->mu);
            }
        }
    }
    free(sr->ids);
    free(sr->tokens);
    free(sr);
}

/* Guarantee 3: checkpoints reach Redis within the sync interval. */
static void on_sync(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (!rq_ready(&w->rq)) return;
    for (int qi = 0; qi < w->cfg->nqueues; qi++) {
        sync_req_t *sr = NULL;
        proto_argv_t a;
        proto_argv_init(&a);
        for (job_t *j = w->held; j; j = j->next) {
            if (j->qidx != qi || !j->running) continue;
            pthread_mutex_lock(&j->mu);
            int dirty = j->ckpt_dirty;
            if (dirty) {
                if (!sr) {
                    sr = calloc(1, sizeof *sr);
                    sr->w = w;
                    sr->ids = malloc((size_t)w->nheld * sizeof *sr->ids);
                    sr->tokens = malloc((size_t)w->nheld * sizeof *sr->tokens);
                }
                proto_argv_adds(&a, j->id);
                proto_argv_adds(&a, j->token);
                proto_argv_adds(&a, j->checkpoint);
                proto_argv_addd(&a, j->progress);
                j->ckpt_dirty = 0;
                memcpy(sr->ids[sr->n], j->id, sizeof j->id);
                memcpy(sr->tokens[sr->n], j->token, sizeof j->token);
                sr->n++;
            }
            pthread_mutex_unlock(&j->mu);
        }
        if (sr && rq_script(&w->rq, PROTO_CHECKPOINT, qname(w, qi), &a, on_synced, sr) < 0) {
            free(sr->ids);
            free(sr->tokens);
            free(sr);
        }
        proto_argv_free(&a);
    }
}

typedef struct {
    worker_t *w;
    int qidx;
} reap_req_t;

static void on_reap(uv_timer_t *t);

static void on_reaped(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    reap_req_t *rr = arg;
    worker_t *w = rr->w;
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 7;
    if (ok) note_garbage(w, rr->qidx, r->element[4], "reap");
    if (ok && r->element[3]->integer && w->state != WORKER_CLOSING) {
        /* The retention trim hit its budget: more old records wait. */
        uv_timer_start(&w->reaper, on_reap, 100, 0);
    }
    if (ok && r->element[6]->integer < 0) {
        log_info("queue %s: first reap (no reaper clock yet): no lease expires for %lld ms",
                 qname(w, rr->qidx), r->element[5]->integer);
    } else if (ok && r->element[6]->integer) {
        /* This call found the reaper clock silent and set the hold. */
        log_warn("queue %s: no reaper ran for %lld ms (Redis paused or restarted, or no worker "
                 "up): no lease expires for %lld ms, so holders extend and report first",
                 qname(w, rr->qidx), r->element[6]->integer, r->element[5]->integer);
    }
    if (ok && (r->element[0]->integer || r->element[1]->integer || r->element[2]->integer)) {
        log_info("reaped expired leases of queue %s: %lld requeued, %lld dead, %lld canceled",
                 qname(w, rr->qidx), r->element[0]->integer, r->element[1]->integer,
                 r->element[2]->integer);
        if (r->element[0]->integer) {
            w->queues[rr->qidx].empty = 0; /* do not rely on the wake-up alone */
            kick(w);
        }
    }
    free(rr);
}

static void on_reap(uv_timer_t *t)
{
    worker_t *w = t->data;
    for (int qi = 0; qi < w->cfg->nqueues && rq_ready(&w->rq); qi++) {
        proto_argv_t a;
        proto_argv_init(&a);
        proto_argv_addll(&a, 1000);
        proto_argv_addll(&a, w->cfg->ttl_succeeded_ms);
        proto_argv_addll(&a, w->cfg->ttl_dead_ms);
        /* Guarantee 6: each worker reaps every lease/3 at most, so a reaper
         * clock silent for lease/2 means Redis was away; then no lease
         * expires for one lease, in which holders reconnect, extend and
         * report their journaled outcomes (schema/redis/README.md). */
        proto_argv_addll(&a, w->cfg->lease_ms / 2);
        proto_argv_addll(&a, w->cfg->lease_ms);
        reap_req_t *rr = malloc(sizeof *rr);
        *rr = (reap_req_t){w, qi};
        if (rq_script(&w->rq, PROTO_REAP, qname(w, qi), &a, on_reaped, rr) < 0) free(rr);
        proto_argv_free(&a);
    }
    /* Jitter the next run so a fleet's reaps spread out. */
    uint64_t every = (uint64_t)w->cfg->lease_ms / 3;
    uv_timer_start(t, on_reap, every / 2 + (uint64_t)random() % (every / 2 + 1), 0);
}

/* ---- cluster-wide resources (handlers' "resources") ---- */

typedef struct {
    worker_t *w;
    const handler_t *handler; /* outlives the loop */
    char id[JOBD_ID_LEN + 1];
    char token[48];
    int renew;
} res_req_t;

/* Builds the keys and arguments for acquire.lua or unacquire.lua. */
static int resource_call(worker_t *w, const handler_t *h, const char *id, proto_script_t s,
                         rq_reply_cb cb, void *arg)
{
    const char *keys[32];
    char keybuf[32][KEYS_MAX];
    int n = 0;
    proto_argv_t a;
    proto_argv_init(&a);
    char holder[256];
    snprintf(holder, sizeof holder, "%s|%s", w->cfg->worker_id, id);
    proto_argv_adds(&a, holder);
    if (s == PROTO_ACQUIRE) proto_argv_addll(&a, w->cfg->lease_ms);
    const char *name;
    json_t *units;
    json_object_foreach(h->resources, name, units)
    {
        if (n == 32) break;
        char suffix[KEYS_MAX];
        snprintf(suffix, sizeof suffix, "res:{resources}:%s", name);
        keys_global(keybuf[n], w->cfg->prefix, suffix);
        keys[n] = keybuf[n];
        if (s == PROTO_ACQUIRE)
            proto_argv_addll(&a, json_integer_value(json_object_get(w->cfg->resources, name)));
        proto_argv_addll(&a, json_integer_value(units));
        n++;
    }
    int rc = rq_script_keys(&w->rq, s, n, keys, &a, cb, arg);
    proto_argv_free(&a);
    return rc;
}

static void on_released_resources(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    (void)r;
    (void)arg;
}

static void resources_release(worker_t *w, job_t *j)
{
    /* If Redis is away, the units free themselves when their hold expires. */
    resource_call(w, j->handler, j->id, PROTO_UNACQUIRE, on_released_resources, NULL);
}

static void on_acquired(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    res_req_t *rr = arg;
    worker_t *w = rr->w;
    job_t *j = held_find(w, rr->id, rr->token);
    int got = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (j) j->res_inflight = 0;
    if (rr->renew || !j || j->res_state != 1) {
        /* A renewal, or the job ended while we asked: give back what a
         * first-time acquire just took for nobody. */
        if (!rr->renew && got && (!j || j->res_state != 1))
            resource_call(w, rr->handler, rr->id, PROTO_UNACQUIRE, on_released_resources, NULL);
        if (rr->renew && !got && j)
            log_msg(LOG_WARN, &j->log,
                    "resource hold could not be renewed (it expired while "
                    "this worker was away); the job runs on");
        free(rr);
        return;
    }
    free(rr);
    if (!got) {
        /* Not enough units free: ask again shortly (jittered, so waiting
         * workers do not ask in lockstep). */
        j->res_retry_at = jobd_now_ms() + 100 + random() % 200;
        return;
    }
    j->res_state = 2;
    run_handler(w, j);
}

static void resources_acquire(worker_t *w, job_t *j)
{
    if (j->res_inflight) return;
    res_req_t *rr = calloc(1, sizeof *rr);
    rr->w = w;
    memcpy(rr->id, j->id, sizeof rr->id);
    memcpy(rr->token, j->token, sizeof rr->token);
    rr->renew = j->res_state == 2;
    rr->handler = j->handler;
    j->res_inflight = 1;
    if (resource_call(w, j->handler, j->id, PROTO_ACQUIRE, on_acquired, rr) < 0) {
        j->res_inflight = 0;
        j->res_retry_at = jobd_now_ms() + 500;
        free(rr);
    }
}

/* ---- stopping handlers, timeouts ---- */

static void stop_handler(job_t *j, job_stop_t why)
{
    job_request_stop(j, why);
    if (j->res_state == 1 || j->spawn_retry_at) {
        j->spawn_retry_at = 0;
        /* Never started: it ends now (drain: released; cancel: canceled;
         * lease lost: dropped), whatever its acquire call says later. */
        handler_ended(j, 0, 0);
        return;
    }
    if (j->exec) exec_stop(j->exec, j->w->cfg->kill_grace_ms);
    /* Built-ins see the flag; a queued uv_work that has not started yet is
     * canceled outright (its done callback then reports it stopped). */
    if (!j->exec && j->handler && j->handler->builtin && !j->handler->builtin->inline_ok)
        uv_cancel((uv_req_t *)&j->work);
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    int64_t now = jobd_now_ms();
    for (job_t *j = w->held; j; j = j->next) {
        /* A job that has run a while is worth resuming after a crash. */
        if (j->running && !j->journaled && now - j->started_ms >= 1000) {
            journal_job(w, j);
            kick(w);
        }
        if (j->running && j->res_state == 1 && now >= j->res_retry_at) resources_acquire(w, j);
        if (j->running && j->spawn_retry_at && now >= j->spawn_retry_at) {
            j->spawn_retry_at = 0;
            run_handler(w, j); /* never frees j: a failure is a retry, release or dead */
        }
        if (j->running && j->deadline_ms && now >= j->deadline_ms && j->stop_reason == STOP_NONE) {
            log_msg(LOG_WARN, &j->log, "timeout: stopping the handler");
            stop_handler(j, STOP_TIMEOUT);
        }
    }
    if (++w->ticks % 50 == 0) {
        health_poll_depths(w); /* every 5 s */
        /* A safety net, not the pickup path (that is the wake-up): should a
         * wake-up ever be lost, an idle jobd still looks every 5 s. */
        for (int i = 0; i < w->cfg->nqueues; i++)
            w->queues[i].empty = 0;
        kick(w);
    }
    if (w->cfg->once && w->ticks % 10 == 0) maybe_close(w);
    /* Scheduled jobs coming due: let the claim look again. */
    int any = 0;
    for (int i = 0; i < w->cfg->nqueues; i++) {
        worker_queue_t *q = &w->queues[i];
        if (q->empty && q->next_sched_ms && now >= q->next_sched_ms) {
            q->empty = 0;
            any = 1;
        }
    }
    if (any) kick(w);
}

/* ---- drain and close ---- */

static void on_closed_handle(uv_handle_t *h)
{
    worker_t *w = h->data;
    w->pending_closes--;
}

static void close_handle(worker_t *w, uv_handle_t *h)
{
    if (uv_is_closing(h)) return;
    w->pending_closes++;
    uv_close(h, on_closed_handle);
}

static void on_rq_closed(rq_t *rq)
{
    worker_t *w = rq->arg;
    (void)w;
}

static void close_all(worker_t *w)
{
    w->state = WORKER_CLOSING;
    log_info("closing: %lld claimed, %lld succeeded, %lld failed, %lld released, %lld lease lost",
             w->stats.claimed, w->stats.succeeded, w->stats.failed, w->stats.released,
             w->stats.lease_lost);
    if (rq_ready(&w->rq)) registry_unpublish(w);
    close_handle(w, (uv_handle_t *)&w->kick);
    close_handle(w, (uv_handle_t *)&w->heartbeat);
    close_handle(w, (uv_handle_t *)&w->reaper);
    close_handle(w, (uv_handle_t *)&w->ticker);
    close_handle(w, (uv_handle_t *)&w->drain_timer);
    close_handle(w, (uv_handle_t *)&w->sync_timer);
    close_handle(w, (uv_handle_t *)&w->sigterm);
    close_handle(w, (uv_handle_t *)&w->sigint);
    close_handle(w, (uv_handle_t *)&w->ckpt_async);
    console_close(w->console);
    if (w->http.open) {
        w->pending_closes++;
        w->http.server.data = w; /* its close callback counts like ours */
        http_stop(&w->http, on_closed_handle);
    }
    commit_journal(w);
    rq_close(&w->rq, on_rq_closed);
}

/* --once: the claims came back empty; ask Redis whether anything is still
 * queued, scheduled or active (a crashed worker's leases count: the reaper
 * will hand them back). One check in flight at a time; the ticker retries. */
typedef struct {
    worker_t *w;
    int pending, busy;
} once_req_t;

static void on_once_stats(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    once_req_t *o = arg;
    worker_t *w = o->w;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->integer ||
        r->element[1]->integer || r->element[2]->integer)
        o->busy = 1;
    if (--o->pending > 0) return;
    w->once_checking = 0;
    int busy = o->busy;
    free(o);
    if (w->state != WORKER_RUNNING || w->nheld || w->claim_inflight) return;
    if (!busy) {
        log_info("--once: every queue is empty and nothing is in flight");
        close_all(w);
    }
}

static void once_check(worker_t *w)
{
    if (w->once_checking) return;
    once_req_t *o = calloc(1, sizeof *o);
    o->w = w;
    w->once_checking = 1;
    for (int qi = 0; qi < w->cfg->nqueues; qi++) {
        proto_argv_t a;
        proto_argv_init(&a);
        o->pending++;
        if (rq_script(&w->rq, PROTO_STATS, qname(w, qi), &a, on_once_stats, o) < 0) {
            o->pending--;
            o->busy = 1;
        }
        proto_argv_free(&a);
    }
    if (o->pending == 0) {
        w->once_checking = 0;
        free(o);
    }
}

static void maybe_close(worker_t *w)
{
    if (w->state == WORKER_CLOSING) return;
    int idle = w->running == 0 && w->nheld == 0 && w->flush_inflight == 0 && !w->claim_inflight;
    if ((w->state == WORKER_DRAINING || w->state == WORKER_STOPPING) && idle) {
        log_info("drained: every lease reported or released");
        close_all(w);
        return;
    }
    if (w->cfg->once && w->state == WORKER_RUNNING && !rq_ready(&w->rq)) {
        /* A cron run must end: Redis away (since it went down, or since the
         * start if it never came up) longer than the drain timeout. */
        int64_t since = w->redis_down_ms ? w->redis_down_ms : w->started_ms;
        if (jobd_now_ms() - since > w->cfg->drain_timeout_ms) {
            log_error("--once: Redis unreachable for more than the drain timeout (%lld ms): "
                      "draining, exit status %d",
                      (long long)w->cfg->drain_timeout_ms, WORKER_EXIT_UNAVAILABLE);
            w->exit_code = WORKER_EXIT_UNAVAILABLE;
            worker_drain(w);
        }
        return;
    }
    if (w->cfg->once && w->state == WORKER_RUNNING && idle && rq_ready(&w->rq)) {
        for (int i = 0; i < w->cfg->nqueues; i++)
            if (!w->queues[i].exhausted) return;
        once_check(w);
    }
}

static void on_hard_deadline(uv_timer_t *t)
{
    worker_t *w = t->data;
    /* Redis stayed away through the drain: what is unreported will be
     * recovered by lease expiry (at-least-once still holds). */
    log_error("drain deadline passed with %d jobs unreported (Redis unreachable?); exiting",
              w->nheld);
    /* --once: the drain did not complete, so the cron run must not report
     * 0 (unless a more specific status is set already). */
    if (w->cfg->once && w->exit_code == 0) w->exit_code = WORKER_EXIT_FORCED;
    for (job_t *j = w->held, *next; j; j = next) {
        next = j->next;
        if (!j->running) {
            held_remove(w, j);
            job_free(j);
        }
    }
    if (w->running == 0) {
        close_all(w);
        return;
    }
    /* A built-in that never looks at should_stop cannot be killed (it is a
     * thread): leave the loop and let main exit without waiting for it, so
     * the drain still ends within its budget (Guarantee 4). Its lease
     * expires and another worker runs it again. */
    log_error("%d built-in handlers did not stop within the kill grace; exiting without them",
              w->running);
    commit_journal(w);
    w->forced = 1;
    uv_stop(w->loop);
}

static void enter_stopping(worker_t *w)
{
    w->state = WORKER_STOPPING;
    log_warn("stopping: asking %d running handlers to stop and checkpoint (kill grace %lld ms)",
             w->running, (long long)w->cfg->kill_grace_ms);
    for (job_t *j = w->held; j; j = j->next)
        if (j->running) stop_handler(j, STOP_DRAIN);
    uv_timer_stop(&w->drain_timer);
    uv_timer_start(&w->drain_timer, on_hard_deadline, (uint64_t)w->cfg->kill_grace_ms + 1000, 0);
    kick(w);
}

static void on_drain_timeout(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->state == WORKER_DRAINING) enter_stopping(w);
}

void worker_drain(worker_t *w)
{
    if (w->state == WORKER_RUNNING) {
        w->state = WORKER_DRAINING;
        log_warn("draining: not ready, no new claims; %d jobs in flight, drain timeout %lld ms",
                 w->running, (long long)w->cfg->drain_timeout_ms);
        if (rq_ready(&w->rq)) registry_publish(w);
        uv_timer_start(&w->drain_timer, on_drain_timeout, (uint64_t)w->cfg->drain_timeout_ms, 0);
        kick(w);
    } else if (w->state == WORKER_DRAINING) {
        log_warn("second signal: skipping the drain wait");
        enter_stopping(w);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    worker_t *w = s->data;
    log_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    worker_drain(w);
}

/* ---- Redis events ---- */

static void on_rq_state(rq_t *rq, rq_state_t st, void *arg)
{
    (void)rq;
    worker_t *w = arg;
    if (st == RQ_FATAL) {
        w->exit_code = 78;
        if (w->state != WORKER_CLOSING) close_all(w);
        return;
    }
    if (st == RQ_SUBSCRIBED) {
        /* Wake-ups published while pub/sub was away reached nobody. */
        for (int i = 0; i < w->cfg->nqueues; i++)
            w->queues[i].empty = 0;
        kick(w);
        return;
    }
    if (st == RQ_READY) {
        w->redis_down_ms = 0;
        for (int i = 0; i < w->cfg->nqueues; i++)
            w->queues[i].empty = 0;
        /* Guarantee 6: extensions first, then the outcomes kept while Redis
         * was away, ahead of anything else on the connection; reap.lua
         * holds lease expiry after an outage long enough for both. */
        extend_leases(w);
        if (w->flush_inflight == 0) flush_outcomes(w);
        registry_publish(w);
        health_poll_depths(w);
        kick(w);
    } else {
        w->claim_inflight = 0;
        w->redis_down_ms = jobd_now_ms();
    }
}

static void on_rq_message(rq_t *rq, const char *channel, const char *msg, void *arg)
{
    (void)rq;
    (void)msg;
    worker_t *w = arg;
    for (int i = 0; i < w->cfg->nqueues; i++) {
        char ch[KEYS_MAX];
        keys_queue_key(ch, w->cfg->prefix, qname(w, i), "wake");
        if (strcmp(ch, channel) == 0) {
            w->queues[i].empty = 0;
            w->queues[i].exhausted = 0;
            w->queues[i].wakes++;
        }
    }
    kick(w);
}

/* ---- lifecycle ---- */

static char **env_allow_list(void)
{
    static const char *const allow[] = {"PATH=", "HOME=",   "LANG=", "LC_ALL=",  "LC_CTYPE=",
                                        "TZ=",   "TMPDIR=", "USER=", "LOGNAME=", NULL};
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **out = calloc(n + 1, sizeof *out);
    size_t k = 0;
    for (char **e = environ; *e; e++)
        for (int i = 0; allow[i]; i++)
            if (strncmp(*e, allow[i], strlen(allow[i])) == 0) out[k++] = strdup(*e);
    return out;
}

int worker_init(worker_t *w, uv_loop_t *loop, const config_t *cfg, const handlers_t *handlers,
                journal_t *jn)
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->jn = jn;
    w->cfg = cfg;
    w->handlers = handlers;
    w->started_ms = jobd_now_ms();
    metrics_hist_init(&w->durations);
    memset(w->depth, 0xff, sizeof w->depth); /* -1: not polled yet */
    gethostname(w->host, sizeof w->host - 1);
    w->child_env_base = env_allow_list();
    srandom((unsigned)(getpid() ^ (unsigned)w->started_ms));
    redis_url_t url;
    char err[512];
    if (redis_url_parse(cfg->redis_url, &url, err, sizeof err) < 0) return JOBD_EINVAL;
    if (redis_url_password_file(&url, cfg->redis_password_file, err, sizeof err) < 0)
        return JOBD_EINVAL;
    rq_init(&w->rq, loop, &url, cfg->prefix, on_rq_state, on_rq_message, w);
    memset(url.password, 0, sizeof url.password);
    uv_idle_init(loop, &w->kick);
    uv_async_init(loop, &w->ckpt_async, on_ckpt_async);
    w->ckpt_async.data = w;
    uv_timer_init(loop, &w->heartbeat);
    uv_timer_init(loop, &w->reaper);
    uv_timer_init(loop, &w->ticker);
    uv_timer_init(loop, &w->drain_timer);
    uv_timer_init(loop, &w->sync_timer);
    uv_signal_init(loop, &w->sigterm);
    uv_signal_init(loop, &w->sigint);
    w->kick.data = w->heartbeat.data = w->reaper.data = w->ticker.data = w;
    w->drain_timer.data = w->sync_timer.data = w->sigterm.data = w->sigint.data = w;
    return 0;
}

static job_outcome_t outcome_parse(const char *s)
{
    for (int o = OUT_ACK; o <= OUT_RELEASE; o++)
        if (s && strcmp(s, outcome_names[o]) == 0) return (job_outcome_t)o;
    return OUT_RELEASE;
}

static void on_journal_row(void *arg, const journal_row_t *r)
{
    worker_t *w = arg;
    if (r->outcome && strcmp(r->outcome, "parked") == 0) {
        /* A checkpoint kept for a possible re-claim, not a lease; after a
         * week (dead-job retention) nobody will resume from it. */
        if (jobd_now_ms() - r->ended_at > JOBD_TTL_DEAD_MS)
            journal_delete(w->jn, r->id);
        else
            w->parked++;
        return;
    }
    int qidx = -1;
    for (int i = 0; i < w->cfg->nqueues; i++)
        if (strcmp(r->queue, qname(w, i)) == 0) qidx = i;
    if (qidx < 0 || strlen(r->id) > JOBD_ID_LEN) {
        log_warn("journal holds job %s of queue %s, which this jobd does not serve; its lease "
                 "will expire instead",
                 r->id, r->queue);
        journal_delete(w->jn, r->id);
        return;
    }
    /* Stop what our predecessor left running of this job before handing
     * the job on, so two copies never run at once. The start time tells a
     * reused pid apart. */
    if (r->pgid > 0 && r->pgid_start > 0 && exec_start_time(r->pgid) == r->pgid_start) {
        log_warn("journal: stopping handler process group %d left from an earlier run of job %s",
                 r->pgid, r->id);
        kill(-r->pgid, SIGKILL);
    }
    job_t *j = job_new(w);
    if (!j) return;
    j->qidx = qidx;
    snprintf(j->id, sizeof j->id, "%s", r->id);
    snprintf(j->token, sizeof j->token, "%s", r->token);
    j->attempt = r->attempt;
    j->journaled = 1;
    j->started_ms = r->claimed_at;
    j->checkpoint = r->checkpoint ? strdup(r->checkpoint) : NULL;
    j->progress = r->progress;
    j->result = r->result ? strdup(r->result) : NULL;
    j->error = r->error ? strdup(r->error) : NULL;
    j->retry_ms = r->retry_ms;
    /* A lease with no outcome was cut short by a crash: release it now with
     * the journal's newest checkpoint instead of waiting for it to expire. */
    j->outcome = r->outcome ? outcome_parse(r->outcome) : OUT_RELEASE;
    j->log = (log_job_t){.job_id = j->id, .queue = qname(w, qidx), .attempt = j->attempt};
    held_add(w, j);
}

static void recover(worker_t *w)
{
    if (!w->jn) return;
    if (journal_load(w->jn, on_journal_row, w) < 0) log_error("reading the journal failed");
    commit_journal(w);
    if (w->nheld) log_info("journal: %d jobs from an earlier run to release or report", w->nheld);
}

int worker_start(worker_t *w)
{
    const config_t *c = w->cfg;
    if (c->http && *c->http && strcmp(c->http, "off") != 0) {
        w->console = console_new(w->loop, &w->rq, c);
        http_cbs_t cbs = {health_not_ready, health_metrics, w, console_route, w->console};
        int rc = http_start(&w->http, w->loop, c->http, &cbs);
        if (rc < 0) {
            log_error("cannot serve HTTP on %s: %s", c->http, uv_strerror(rc));
            w->exit_code = 78;
            close_all(w); /* uv_run then only finishes the closes */
            return rc;
        }
        log_info("HTTP on %s (port %d): /health/live /health/ready /metrics, the console at / "
                 "and /api/v1",
                 c->http, w->http.port);
    }
    recover(w);
    for (int i = 0; i < c->nqueues; i++) {
        char ch[KEYS_MAX];
        keys_queue_key(ch, c->prefix, c->queues[i].name, "wake");
        rq_subscribe(&w->rq, ch);
    }
    rq_start(&w->rq);
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uint64_t third = (uint64_t)c->lease_ms / 3;
    uv_timer_start(&w->heartbeat, on_heartbeat, third, third);
    uv_timer_start(&w->reaper, on_reap, third / 2 + (uint64_t)random() % (third / 2 + 1), 0);
    uv_timer_start(&w->ticker, on_tick, TICK_MS, TICK_MS);
    uv_timer_start(&w->sync_timer, on_sync, (uint64_t)c->sync_interval_ms,
                   (uint64_t)c->sync_interval_ms);
    log_info("jobd started: worker %s, queues %d, concurrency %d, lease %lld ms", c->worker_id,
             c->nqueues, c->concurrency, (long long)c->lease_ms);
    return 0;
}

void worker_free(worker_t *w)
{
    commit_journal(w);
    for (job_t *j = w->held, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    w->held = NULL;
    free_strv(w->child_env_base);
    console_free(w->console);
}
