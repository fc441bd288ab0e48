/* daemon.c - see daemon.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "orphans.h"
#include "pools.h"

#define HOUSEKEEPING_MS HEALTH_POLL_MS /* queue depths for /metrics; the safety-net look */

static void kick(void *arg);

/* ---- what the outside reads ---- */

static void snapshot(void *arg, stats_snapshot_t *s)
{
    const daemon_t *d = arg;
    memset(s, 0, sizeof *s);
    s->counters = d->stats;
    s->running = d->claim.running;
    s->draining = d->drain.state != DRAIN_RUNNING;
    s->redis_up = rq_ready(&d->rq);
    if (!s->redis_up) rq_why_down(&d->rq, s->why_down, sizeof s->why_down);
    s->journal_ok = d->jn != NULL;
    s->journal_commits = journal_commits(d->jn);
    s->redis_commands = d->rq.commands_sent;
    s->orphans_reaped = orphans_reaped(d->orphans);
    s->jobs = &d->jm;
    memcpy(s->queues, d->claim.garbage, sizeof s->queues);
    http_get_stats(&d->http, &s->http);
}

/* The jobs whose handlers run now, for the registry entry (the console's
 * workers page): id, queue, type, attempt, progress, started_at. */
static json_t *running_jobs(const daemon_t *d)
{
    json_t *arr = json_array();
    for (job_t *j = d->lease.head; j && arr; j = j->next) {
        if (!j->running) continue;
        pthread_mutex_lock(&j->mu);
        double progress = j->progress;
        pthread_mutex_unlock(&j->mu);
        char started[40];
        jobd_format_rfc3339(j->started_ms, started, sizeof started);
        json_t *o = json_pack("{s:s, s:s, s:s?, s:i, s:f, s:s}", "id", j->id, "queue",
                              d->cfg->queues[j->qidx].name, "type", j->env.type, "attempt",
                              j->attempt, "progress", progress, "started_at", started);
        if (o) json_array_append_new(arr, o);
    }
    return arr;
}

static void publish(daemon_t *d)
{
    stats_snapshot_t s;
    snapshot(d, &s);
    registry_publish(&d->registry, &s, running_jobs(d));
}

/* notify_status_fn: what systemd shows as the unit's status. */
static void status_text(void *arg, char *buf, size_t len)
{
    const daemon_t *d = arg;
    const char *what = d->drain.state != DRAIN_RUNNING ? "draining: "
                       : !rq_ready(&d->rq)             ? "redis unreachable: "
                                                       : "";
    size_t n = (size_t)snprintf(buf, len, "%srunning %d of %d, queues ", what, d->claim.running,
                                d->cfg->concurrency);
    for (int i = 0; i < d->cfg->nqueues && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "," : "", d->cfg->queues[i].name);
}

/* READY=1 to systemd the first time /health/ready would answer 200. */
static void maybe_ready(daemon_t *d)
{
    if (!notify_ready_sent(&d->notify) && health_ready(&d->health)) notify_ready(&d->notify);
}

/* http_cbs_t.not_ready: health's reasons. */
static void on_not_ready(void *arg, metrics_buf_t *b)
{
    daemon_t *d = arg;
    health_not_ready(&d->health, b);
}

/* http_cbs_t.metrics: health's figures, then the console's. */
static void on_metrics(void *arg, metrics_buf_t *b)
{
    daemon_t *d = arg;
    health_metrics(&d->health, b);
    console_metrics(d->console, b);
}

/* ---- the pump: see daemon.h for the order and why ---- */

static void on_hold_over(uv_timer_t *t)
{
    kick(t->data);
}

static void on_pump(uv_idle_t *h)
{
    daemon_t *d = h->data;
    uv_idle_stop(h);
    /* 1. One group commit per loop iteration at most; retired jobs' rows
     *    are deleted in it, so they are freed after it. */
    lease_commit(&d->lease);
    lease_free_retired(&d->lease);
    /* 2. Even if the commit failed: the job runs, as without a journal. */
    run_send_inputs(&d->run);
    /* 3. and 4., unless spawns are behind (daemon.h); the timer ends a
     *    hold that no spawn's end ends. */
    int hold = spawner_hold(&d->hold, spawner_backlog(&d->spawner), uv_now(d->loop));
    if (hold && !uv_is_active((uv_handle_t *)&d->hold_timer))
        uv_timer_start(&d->hold_timer, on_hold_over, SPAWNER_HOLD_MS, 0);
    if (!hold) outbox_flush(&d->outbox);
    if (!hold && d->drain.state == DRAIN_RUNNING) claim_more(&d->claim);
    /* 5. */
    int64_t since = d->redis_down_ms ? d->redis_down_ms : d->started_ms;
    drain_facts_t f = {
        .idle = d->claim.running == 0 && d->lease.n == 0 && !outbox_busy(&d->outbox) &&
                !d->claim.inflight,
        .redis_ready = rq_ready(&d->rq),
        .redis_away_ms = jobd_now_ms() - since,
        .exhausted = claim_exhausted(&d->claim),
    };
    if (drain_step(&d->drain, &f)) claim_check_empty(&d->claim);
}

static void kick(void *arg)
{
    daemon_t *d = arg;
    if (d->drain.state != DRAIN_CLOSING) uv_idle_start(&d->pump, on_pump);
}

/* ---- news between the modules ---- */

static void on_claimed_job(void *arg, job_t *j)
{
    daemon_t *d = arg;
    run_start(&d->run, j);
    notify_changed(&d->notify);
}

static void on_handler_ended(void *arg, job_t *j, job_outcome_t o)
{
    daemon_t *d = arg;
    jobmetrics_ran(&d->jm, j, o);
    notify_changed(&d->notify);
    claim_slot_free(&d->claim, j->qidx);
    resources_release(&d->res, j);
    outbox_put(&d->outbox, j, o);
}

static void on_needs_resources(void *arg, job_t *j)
{
    daemon_t *d = arg;
    resources_acquire(&d->res, j);
}

static void on_resources_held(void *arg, job_t *j)
{
    daemon_t *d = arg;
    run_handler(&d->run, j);
}

static void on_resources_busy(void *arg, job_t *j, int64_t delay, const char *why)
{
    daemon_t *d = arg;
    run_defer(&d->run, j, delay, why);
}

static void on_lease_lost(void *arg, job_t *j)
{
    daemon_t *d = arg;
    if (j->running)
        run_stop(&d->run, j, STOP_LEASE_LOST);
    else if (!j->sent)
        outbox_put(&d->outbox, j, OUT_DROP); /* also forgets its journal row */
}

static void on_cancel(void *arg, job_t *j)
{
    daemon_t *d = arg;
    run_stop(&d->run, j, STOP_CANCEL);
}

static void on_requeued(void *arg, int qidx, job_outcome_t o, int64_t retry_ms)
{
    daemon_t *d = arg;
    claim_requeued(&d->claim, qidx, o, retry_ms);
}

static void on_reap_set_aside(void *arg, int qidx, const redisReply *set_aside)
{
    daemon_t *d = arg;
    claim_note_garbage(&d->claim, qidx, set_aside, "reap");
}

static void on_reap_requeued(void *arg, int qidx)
{
    daemon_t *d = arg;
    claim_requeued(&d->claim, qidx, OUT_RELEASE, 0); /* do not rely on the wake-up alone */
    kick(d);
}

static void on_checked_empty(void *arg, int empty)
{
    daemon_t *d = arg;
    if (empty && d->drain.state == DRAIN_RUNNING && d->lease.n == 0 && !d->claim.inflight)
        drain_event(&d->drain, DRAIN_EV_ONCE_EMPTY);
}

/* ---- the drain's actions ---- */

static void on_drain_begin(void *arg)
{
    daemon_t *d = arg;
    log_warn("draining: not ready, no new claims; %d jobs in flight, drain timeout %lld ms",
             d->claim.running, (long long)d->cfg->drain_timeout_ms);
    d->run.draining = 1;
    notify_stopping(&d->notify);
    if (rq_ready(&d->rq)) publish(d);
    kick(d);
}

static void on_drain_stop(void *arg)
{
    daemon_t *d = arg;
    log_warn("stopping: asking %d running handlers to stop and checkpoint (kill grace %lld ms)",
             d->claim.running, (long long)d->cfg->kill_grace_ms);
    run_stop_all(&d->run, STOP_DRAIN);
    kick(d);
}

static void on_rq_closed(rq_t *rq)
{
    (void)rq;
}

static void close_all(void *arg)
{
    daemon_t *d = arg;
    const stats_t *s = &d->stats;
    log_info("closing: %lld claimed, %lld succeeded, %lld failed, %lld released, %lld lease lost",
             s->claimed, s->succeeded, s->failed, s->released, s->lease_lost);
    if (rq_ready(&d->rq)) registry_unpublish(&d->registry);
    uv_close((uv_handle_t *)&d->pump, NULL);
    uv_close((uv_handle_t *)&d->heartbeat, NULL);
    uv_close((uv_handle_t *)&d->housekeeping, NULL);
    uv_close((uv_handle_t *)&d->hold_timer, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    notify_close(&d->notify);
    claim_close(&d->claim);
    reap_close(&d->reap);
    schedule_close(&d->sched);
    drain_close(&d->drain);
    lease_close(&d->lease); /* commits the journal */
    console_close(d->console);
    if (d->http.open) http_stop(&d->http, NULL);
    pools_close(); /* their processes get end of file and SIGTERM */
    rq_close(&d->rq, on_rq_closed);
}

static void on_drain_abandon(void *arg)
{
    daemon_t *d = arg;
    /* Redis stayed away through the drain: what is unreported will be
     * recovered by lease expiry (at-least-once still holds). */
    log_error("drain deadline passed with %d jobs unreported (Redis unreachable?); exiting",
              d->lease.n);
    lease_retire_idle(&d->lease);
    if (d->claim.running == 0) {
        close_all(d);
        return;
    }
    /* A built-in that never looks at should_stop cannot be killed (it is a
     * thread): leave the loop and let main exit without waiting for it, so
     * the drain still ends within its budget (Guarantee 4). Its lease
     * expires and another worker runs it again. */
    log_error("%d built-in handlers did not stop within the kill grace; exiting without them",
              d->claim.running);
    lease_stop_waiters(&d->lease); /* commits the journal */
    d->forced = 1;
    uv_stop(d->loop);
}

/* ---- timers, signals, Redis ---- */

static void on_heartbeat(uv_timer_t *t)
{
    daemon_t *d = t->data;
    if (!rq_ready(&d->rq)) return;
    lease_extend_all(&d->lease);
    publish(d);
    resources_renew_all(&d->res);
    maybe_ready(d); /* had a handler pool been in a crash loop at connect */
}

static void on_housekeeping(uv_timer_t *t)
{
    daemon_t *d = t->data;
    health_poll_depths(&d->health);
    batches_check(&d->batches); /* batches whose parts here are done */
    /* A safety net, not the pickup path (that is the wake-up): should a
     * wake-up ever be lost, an idle jobd still looks every 5 s. */
    claim_look_again(&d->claim);
    kick(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    log_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    drain_event(&d->drain, DRAIN_EV_SIGNAL);
}

static void on_rq_state(rq_t *rq, rq_state_t st, void *arg)
{
    (void)rq;
    daemon_t *d = arg;
    switch (st) {
    case RQ_FATAL:
        drain_event(&d->drain, DRAIN_EV_FATAL);
        return;
    case RQ_SUBSCRIBED:
        /* Wake-ups published while pub/sub was away reached nobody. */
        claim_look_again(&d->claim);
        kick(d);
        return;
    case RQ_READY:
        d->redis_down_ms = 0;
        claim_look_again(&d->claim);
        /* Guarantee 6: extensions first, then the outcomes kept while Redis
         * was away, ahead of anything else on the connection; reap.lua
         * holds lease expiry after an outage long enough for both. */
        lease_extend_all(&d->lease);
        outbox_flush(&d->outbox);
        publish(d);
        health_poll_depths(&d->health);
        schedule_start(&d->sched); /* catch up what was missed meanwhile */
        batches_check(&d->batches);
        maybe_ready(d);
        notify_changed(&d->notify);
        kick(d);
        return;
    case RQ_DOWN:
        claim_redis_down(&d->claim);
        d->redis_down_ms = jobd_now_ms();
        notify_changed(&d->notify);
        return;
    }
}

static void on_rq_message(rq_t *rq, const char *channel, const char *msg, void *arg)
{
    (void)rq;
    (void)msg;
    daemon_t *d = arg;
    claim_wake(&d->claim, channel);
    kick(d);
}

/* ---- life cycle ---- */

/* Wires the modules to each other (see daemon.h for who calls whom). */
static void wire(daemon_t *d)
{
    uv_loop_t *loop = d->loop;
    const config_t *cfg = d->cfg;
    claim_init(&d->claim, loop, cfg, &d->rq, &d->lease, &d->stats,
               &(claim_cbs_t){on_claimed_job, on_checked_empty, kick, d});
    outbox_init(&d->outbox, cfg, &d->rq, &d->lease, &d->stats, &d->jm,
                &(outbox_cbs_t){on_requeued, kick, d});
    resources_init(&d->res, cfg, &d->rq, &d->lease,
                   &(resources_cbs_t){on_resources_held, on_resources_busy, d});
    reap_init(&d->reap, loop, cfg, &d->rq, &(reap_cbs_t){on_reap_set_aside, on_reap_requeued, d});
    drain_init(&d->drain, loop, cfg,
               &(drain_cbs_t){on_drain_begin, on_drain_stop, close_all, on_drain_abandon, kick, d});
    health_init(&d->health, cfg, &d->rq, snapshot, d);
    registry_init(&d->registry, cfg, &d->rq, d->started_ms);
    batches_init(&d->batches, cfg, &d->rq);
    notify_init(&d->notify, loop, status_text, d);
    uv_idle_init(loop, &d->pump);
    uv_timer_init(loop, &d->heartbeat);
    uv_timer_init(loop, &d->housekeeping);
    uv_timer_init(loop, &d->hold_timer);
    d->hold_timer.data = d;
    uv_signal_init(loop, &d->sigterm);
    uv_signal_init(loop, &d->sigint);
    d->pump.data = d->heartbeat.data = d->housekeeping.data = d;
    d->sigterm.data = d->sigint.data = d;
}

int daemon_init(daemon_t *d, uv_loop_t *loop, const config_t *cfg, const handlers_t *handlers,
                journal_t *jn, const struct orphans *orphans, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    d->loop = loop;
    d->cfg = cfg;
    d->handlers = handlers;
    d->jn = jn;
    d->orphans = orphans;
    d->started_ms = jobd_now_ms();
    srandom((unsigned)(getpid() ^ (unsigned)d->started_ms));
    redis_url_t url;
    int rc = JOBD_EINVAL;
    if (redis_url_parse(cfg->redis_url, &url, err, errlen) < 0) return rc;
    if (redis_url_password_file(&url, cfg->redis_password_file, err, errlen) < 0) goto fail_url;
    /* What can fail comes first, before any handle is open on the loop. */
    if (schedule_init(&d->sched, loop, cfg, &d->rq, err, errlen) < 0) goto fail_url;
    rc = jobmetrics_init(&d->jm, cfg, handlers);
    if (rc < 0) goto fail_jm;
    if (spawner_init(&d->spawner, loop) < 0) goto fail_spawner;
    rc = run_init(&d->run, loop, &d->spawner, cfg, handlers, &d->lease, &d->stats,
                  &(run_cbs_t){on_handler_ended, on_needs_resources, kick, d});
    if (rc < 0) goto fail_run;
    rc = lease_init(&d->lease, loop, cfg, &d->rq, jn, &d->stats,
                    &(lease_cbs_t){on_lease_lost, on_cancel, kick, d});
    if (rc < 0) goto fail_lease;
    rq_init(&d->rq, loop, &url, cfg->prefix, on_rq_state, on_rq_message, d);
    memset(url.password, 0, sizeof url.password);
    wire(d);
    return 0;
fail_lease:
    run_free(&d->run);
fail_run:
    spawner_close(&d->spawner);
    uv_run(loop, UV_RUN_NOWAIT); /* its handle's close; nothing else is open yet */
fail_spawner:
    jobmetrics_free(&d->jm);
fail_jm:
    schedule_free(&d->sched);
    snprintf(err, errlen, "out of memory");
fail_url:
    memset(url.password, 0, sizeof url.password);
    return rc;
}

static void subscribe_wakeups(daemon_t *d)
{
    for (int i = 0; i < d->cfg->nqueues; i++) {
        char ch[KEYS_MAX];
        keys_queue_key(ch, d->cfg->prefix, d->cfg->queues[i].name, "wake");
        rq_subscribe(&d->rq, ch);
    }
}

int daemon_start(daemon_t *d, char *err, size_t errlen)
{
    const config_t *c = d->cfg;
    if (c->http && *c->http && strcmp(c->http, "off") != 0) {
        d->console = console_new(d->loop, &d->rq, c);
        http_cbs_t cbs = {on_not_ready, on_metrics, d, console_route, d->console};
        int rc = http_start(&d->http, d->loop, c->http, &cbs);
        if (rc < 0) {
            log_error("cannot serve HTTP on %s: %s", c->http, uv_strerror(rc));
            snprintf(err, errlen, "cannot serve HTTP on %s (--http HOST:PORT, or \"off\")",
                     c->http);
            drain_event(&d->drain, DRAIN_EV_HTTP_FAILED); /* uv_run only finishes the closes */
            return rc;
        }
        log_info("HTTP on %s (port %d): /health/live /health/ready /metrics, the console at / "
                 "and /api/v1",
                 c->http, d->http.port);
    }
    lease_recover(&d->lease);
    /* After recovery: what an earlier run left of the pools is killed first. */
    pools_start(d->loop, d->handlers, c->concurrency, c->kill_grace_ms, (size_t)c->max_output_bytes,
                d->run.child_env_base, d->jn);
    procs_forget_old(journal_procs(d->jn)); /* recovery is done with the old records */
    subscribe_wakeups(d);
    rq_start(&d->rq);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uint64_t third = (uint64_t)c->lease_ms / 3;
    uv_timer_start(&d->heartbeat, on_heartbeat, third, third);
    uv_timer_start(&d->housekeeping, on_housekeeping, HOUSEKEEPING_MS, HOUSEKEEPING_MS);
    reap_start(&d->reap);
    lease_start(&d->lease);
    drain_start(&d->drain);
    notify_start(&d->notify);
    log_info("jobd started: worker %s, queues %d, concurrency %d, lease %lld ms", c->worker_id,
             c->nqueues, c->concurrency, (long long)c->lease_ms);
    return 0;
}

void daemon_drain(daemon_t *d)
{
    drain_event(&d->drain, DRAIN_EV_SIGNAL);
}

int daemon_exit_status(const daemon_t *d)
{
    return drain_exit_status(d->drain.exit_code, d->cfg->once, d->stats.dead);
}

int daemon_forced(const daemon_t *d)
{
    return d->forced;
}

void daemon_free(daemon_t *d)
{
    lease_commit(&d->lease);
    lease_free(&d->lease);
    run_free(&d->run);
    spawner_close(&d->spawner);
    jobmetrics_free(&d->jm);
    schedule_free(&d->sched);
    console_free(d->console);
    d->console = NULL;
}
