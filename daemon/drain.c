/* drain.c - see drain.h. */
#define _GNU_SOURCE
#include <string.h>

#include "drain.h"
#include "log.h"

static drain_step_t to(drain_state_t s, drain_action_t a, int code)
{
    return (drain_step_t){s, a, code};
}

drain_step_t drain_next(drain_state_t s, drain_event_t ev, int code, int once)
{
    if (s == DRAIN_CLOSING) return to(s, DRAIN_ACT_NONE, code);
    if (ev == DRAIN_EV_FATAL || ev == DRAIN_EV_HTTP_FAILED)
        return to(DRAIN_CLOSING, DRAIN_ACT_CLOSE, DRAIN_EXIT_CONFIG);
    switch (s) {
    case DRAIN_RUNNING:
        if (ev == DRAIN_EV_SIGNAL) return to(DRAIN_DRAINING, DRAIN_ACT_BEGIN, code);
        if (ev == DRAIN_EV_REDIS_AWAY && once)
            return to(DRAIN_DRAINING, DRAIN_ACT_BEGIN, DRAIN_EXIT_UNAVAILABLE);
        if (ev == DRAIN_EV_ONCE_EMPTY && once) return to(DRAIN_CLOSING, DRAIN_ACT_CLOSE, code);
        break;
    case DRAIN_DRAINING:
        if (ev == DRAIN_EV_SIGNAL || ev == DRAIN_EV_TIMEOUT)
            return to(DRAIN_STOPPING, DRAIN_ACT_STOP, code);
        if (ev == DRAIN_EV_IDLE) return to(DRAIN_CLOSING, DRAIN_ACT_CLOSE, code);
        break;
    case DRAIN_STOPPING:
        if (ev == DRAIN_EV_IDLE) return to(DRAIN_CLOSING, DRAIN_ACT_CLOSE, code);
        /* --once: the drain did not complete, so the cron run must not
         * report 0 (unless a more specific status is set already). */
        if (ev == DRAIN_EV_HARD_DEADLINE)
            return to(DRAIN_CLOSING, DRAIN_ACT_ABANDON,
                      once && code == 0 ? DRAIN_EXIT_FORCED : code);
        break;
    case DRAIN_CLOSING:
        break;
    }
    return to(s, DRAIN_ACT_NONE, code);
}

drain_event_t drain_due(drain_state_t s, const drain_facts_t *f, int once, int64_t drain_timeout_ms,
                        int *check)
{
    *check = 0;
    if (s == DRAIN_DRAINING || s == DRAIN_STOPPING) return f->idle ? DRAIN_EV_IDLE : DRAIN_EV_NONE;
    if (s != DRAIN_RUNNING || !once) return DRAIN_EV_NONE;
    /* A cron run must end: Redis away (since it went down, or since the
     * start if it never came up) longer than the drain timeout. */
    if (!f->redis_ready)
        return f->redis_away_ms > drain_timeout_ms ? DRAIN_EV_REDIS_AWAY : DRAIN_EV_NONE;
    *check = f->idle && f->exhausted;
    return DRAIN_EV_NONE;
}

int drain_exit_status(int code, int once, long long dead)
{
    /* --once for cron: 0 only if every job it finished succeeded (dead as
     * Redis confirmed it; a retry that later succeeded is fine). */
    return code == 0 && once && dead > 0 ? DRAIN_EXIT_DEAD : code;
}

/* ---- applying transitions ---- */

static void on_timer(uv_timer_t *t);

void drain_init(drain_t *d, uv_loop_t *loop, const config_t *cfg, const drain_cbs_t *cbs)
{
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    d->cbs = *cbs;
    uv_timer_init(loop, &d->timer);
    uv_timer_init(loop, &d->once_timer);
    d->timer.data = d->once_timer.data = d;
}

static void on_once_timer(uv_timer_t *t)
{
    drain_t *d = t->data;
    d->cbs.kick(d->cbs.arg);
}

void drain_start(drain_t *d)
{
    if (d->cfg->once) uv_timer_start(&d->once_timer, on_once_timer, 1000, 1000);
}

static void say_transition(const drain_t *d, drain_state_t was, drain_event_t ev)
{
    if (ev == DRAIN_EV_SIGNAL && was == DRAIN_DRAINING)
        log_warn("second signal: skipping the drain wait");
    else if (ev == DRAIN_EV_REDIS_AWAY)
        log_error("--once: Redis unreachable for more than the drain timeout (%lld ms): "
                  "draining, exit status %d",
                  (long long)d->cfg->drain_timeout_ms, DRAIN_EXIT_UNAVAILABLE);
    else if (ev == DRAIN_EV_IDLE)
        log_info("drained: every lease reported or released");
    else if (ev == DRAIN_EV_ONCE_EMPTY)
        log_info("--once: every queue is empty and nothing is in flight");
}

void drain_event(drain_t *d, drain_event_t ev)
{
    drain_state_t was = d->state;
    drain_step_t st = drain_next(was, ev, d->exit_code, d->cfg->once);
    d->state = st.state;
    d->exit_code = st.exit_code;
    if (st.action != DRAIN_ACT_NONE) say_transition(d, was, ev);
    switch (st.action) {
    case DRAIN_ACT_BEGIN:
        uv_timer_start(&d->timer, on_timer, (uint64_t)d->cfg->drain_timeout_ms, 0);
        d->cbs.begin(d->cbs.arg);
        break;
    case DRAIN_ACT_STOP:
        uv_timer_stop(&d->timer);
        uv_timer_start(&d->timer, on_timer, (uint64_t)d->cfg->kill_grace_ms + 1000, 0);
        d->cbs.stop(d->cbs.arg);
        break;
    case DRAIN_ACT_CLOSE:
        d->cbs.close(d->cbs.arg);
        break;
    case DRAIN_ACT_ABANDON:
        d->cbs.abandon(d->cbs.arg);
        break;
    case DRAIN_ACT_NONE:
        break;
    }
}

/* The drain timeout in DRAINING, the hard deadline in STOPPING. */
static void on_timer(uv_timer_t *t)
{
    drain_t *d = t->data;
    drain_event(d, d->state == DRAIN_DRAINING ? DRAIN_EV_TIMEOUT : DRAIN_EV_HARD_DEADLINE);
}

int drain_step(drain_t *d, const drain_facts_t *f)
{
    int check = 0;
    drain_event_t ev = drain_due(d->state, f, d->cfg->once, d->cfg->drain_timeout_ms, &check);
    if (ev != DRAIN_EV_NONE) drain_event(d, ev);
    return check;
}

void drain_close(drain_t *d)
{
    uv_close((uv_handle_t *)&d->timer, NULL);
    uv_close((uv_handle_t *)&d->once_timer, NULL);
}
