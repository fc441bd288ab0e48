/* Unit tests of the drain's transitions (daemon/drain.c): one transition
 * per call, every exit path of the diagram in drain.h, and the exit
 * status. No loop, no Redis. */
#define _GNU_SOURCE
#include "drain.h"
#include "test.h"

#define STEP(s, ev, code, once, want_s, want_a, want_code)                                         \
    do {                                                                                           \
        drain_step_t st_ = drain_next(s, ev, code, once);                                          \
        ASSERT_EQ(st_.state, want_s);                                                              \
        ASSERT_EQ(st_.action, want_a);                                                             \
        ASSERT_EQ(st_.exit_code, want_code);                                                       \
    } while (0)

TEST(drain_unit_signals_and_timeouts)
{
    /* RUNNING --signal--> DRAINING --timeout or 2nd signal--> STOPPING. */
    STEP(DRAIN_RUNNING, DRAIN_EV_SIGNAL, 0, 0, DRAIN_DRAINING, DRAIN_ACT_BEGIN, 0);
    STEP(DRAIN_DRAINING, DRAIN_EV_TIMEOUT, 0, 0, DRAIN_STOPPING, DRAIN_ACT_STOP, 0);
    STEP(DRAIN_DRAINING, DRAIN_EV_SIGNAL, 0, 0, DRAIN_STOPPING, DRAIN_ACT_STOP, 0);
    /* A third signal changes nothing. */
    STEP(DRAIN_STOPPING, DRAIN_EV_SIGNAL, 0, 0, DRAIN_STOPPING, DRAIN_ACT_NONE, 0);
    /* Idle ends a drain; it means nothing while running. */
    STEP(DRAIN_DRAINING, DRAIN_EV_IDLE, 0, 0, DRAIN_CLOSING, DRAIN_ACT_CLOSE, 0);
    STEP(DRAIN_STOPPING, DRAIN_EV_IDLE, 0, 0, DRAIN_CLOSING, DRAIN_ACT_CLOSE, 0);
    STEP(DRAIN_RUNNING, DRAIN_EV_IDLE, 0, 0, DRAIN_RUNNING, DRAIN_ACT_NONE, 0);
    /* A stale timer firing in the wrong state does nothing. */
    STEP(DRAIN_RUNNING, DRAIN_EV_TIMEOUT, 0, 0, DRAIN_RUNNING, DRAIN_ACT_NONE, 0);
    STEP(DRAIN_DRAINING, DRAIN_EV_HARD_DEADLINE, 0, 0, DRAIN_DRAINING, DRAIN_ACT_NONE, 0);
    /* CLOSING is the end: nothing moves it. */
    for (int ev = DRAIN_EV_SIGNAL; ev <= DRAIN_EV_HTTP_FAILED; ev++)
        STEP(DRAIN_CLOSING, (drain_event_t)ev, 0, 1, DRAIN_CLOSING, DRAIN_ACT_NONE, 0);
}

TEST(drain_unit_exit_paths)
{
    /* Hard deadline: abandon; --once says 75 unless something more
     * specific was said already. */
    STEP(DRAIN_STOPPING, DRAIN_EV_HARD_DEADLINE, 0, 0, DRAIN_CLOSING, DRAIN_ACT_ABANDON, 0);
    STEP(DRAIN_STOPPING, DRAIN_EV_HARD_DEADLINE, 0, 1, DRAIN_CLOSING, DRAIN_ACT_ABANDON,
         DRAIN_EXIT_FORCED);
    STEP(DRAIN_STOPPING, DRAIN_EV_HARD_DEADLINE, DRAIN_EXIT_UNAVAILABLE, 1, DRAIN_CLOSING,
         DRAIN_ACT_ABANDON, DRAIN_EXIT_UNAVAILABLE);
    /* A foreign Redis layout or an HTTP port that cannot listen: 78 from
     * any state but CLOSING. */
    for (int s = DRAIN_RUNNING; s <= DRAIN_STOPPING; s++) {
        STEP((drain_state_t)s, DRAIN_EV_FATAL, 0, 0, DRAIN_CLOSING, DRAIN_ACT_CLOSE,
             DRAIN_EXIT_CONFIG);
        STEP((drain_state_t)s, DRAIN_EV_HTTP_FAILED, 0, 1, DRAIN_CLOSING, DRAIN_ACT_CLOSE,
             DRAIN_EXIT_CONFIG);
    }
    /* --once: Redis away too long drains with 69; queues empty closes. */
    STEP(DRAIN_RUNNING, DRAIN_EV_REDIS_AWAY, 0, 1, DRAIN_DRAINING, DRAIN_ACT_BEGIN,
         DRAIN_EXIT_UNAVAILABLE);
    STEP(DRAIN_RUNNING, DRAIN_EV_ONCE_EMPTY, 0, 1, DRAIN_CLOSING, DRAIN_ACT_CLOSE, 0);
    /* ... and neither applies to a daemon that is not --once. */
    STEP(DRAIN_RUNNING, DRAIN_EV_REDIS_AWAY, 0, 0, DRAIN_RUNNING, DRAIN_ACT_NONE, 0);
    STEP(DRAIN_RUNNING, DRAIN_EV_ONCE_EMPTY, 0, 0, DRAIN_RUNNING, DRAIN_ACT_NONE, 0);
    /* The final status: 1 for a --once run that saw a job dead. */
    ASSERT_EQ(drain_exit_status(0, 1, 2), DRAIN_EXIT_DEAD);
    ASSERT_EQ(drain_exit_status(0, 1, 0), 0);
    ASSERT_EQ(drain_exit_status(0, 0, 2), 0);
    ASSERT_EQ(drain_exit_status(DRAIN_EXIT_FORCED, 1, 2), DRAIN_EXIT_FORCED);
}

TEST(drain_unit_due)
{
    int check = 7;
    drain_facts_t f = {.idle = 1, .redis_ready = 1, .redis_away_ms = 0, .exhausted = 1};
    /* Draining: idle ends it. */
    ASSERT_EQ(drain_due(DRAIN_DRAINING, &f, 0, 1000, &check), DRAIN_EV_IDLE);
    ASSERT_EQ(check, 0);
    f.idle = 0;
    ASSERT_EQ(drain_due(DRAIN_STOPPING, &f, 0, 1000, &check), DRAIN_EV_NONE);
    /* Running, not --once: nothing is ever due. */
    f.idle = 1;
    ASSERT_EQ(drain_due(DRAIN_RUNNING, &f, 0, 1000, &check), DRAIN_EV_NONE);
    ASSERT_EQ(check, 0);
    /* --once, idle and every queue exhausted: ask Redis. */
    ASSERT_EQ(drain_due(DRAIN_RUNNING, &f, 1, 1000, &check), DRAIN_EV_NONE);
    ASSERT_EQ(check, 1);
    f.exhausted = 0;
    drain_due(DRAIN_RUNNING, &f, 1, 1000, &check);
    ASSERT_EQ(check, 0);
    /* --once, Redis away: only past the drain timeout. */
    f.redis_ready = 0;
    f.redis_away_ms = 1000;
    ASSERT_EQ(drain_due(DRAIN_RUNNING, &f, 1, 1000, &check), DRAIN_EV_NONE);
    f.redis_away_ms = 1001;
    ASSERT_EQ(drain_due(DRAIN_RUNNING, &f, 1, 1000, &check), DRAIN_EV_REDIS_AWAY);
    ASSERT_EQ(check, 0);
    ASSERT_EQ(drain_due(DRAIN_CLOSING, &f, 1, 1000, &check), DRAIN_EV_NONE);
}
