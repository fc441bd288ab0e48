/* drain.h - the daemon's life: RUNNING, DRAINING, STOPPING, CLOSING, and
 * its exit status.
 *
 * DESIGN: one enum, the diagram below, and one function that performs one
 * transition per call (drain_next, pure: state and event in; new state,
 * the action to take and the exit status out). drain_event applies it and
 * runs the action through callbacks daemon.c wires; drain_due (pure) turns
 * what the pump sees into the event due, if any. Every way out is on the
 * diagram:
 *
 *   RUNNING  --SIGTERM/SIGINT--------------------------> DRAINING   [begin]
 *   DRAINING --drain timeout, or a 2nd signal----------> STOPPING   [stop handlers]
 *   DRAINING/STOPPING --nothing runs, nothing held-----> CLOSING    [close]
 *   STOPPING --hard deadline (kill grace + 1 s)--------> CLOSING    [abandon: exit
 *              without unreported leases; if a built-in still runs, leave the loop (forced)]
 *   RUNNING  --(--once) Redis confirms queues empty----> CLOSING    [close]
 *   RUNNING  --(--once) Redis away past drain timeout--> DRAINING   [begin] exit 69
 *   any but CLOSING --Redis holds a foreign layout-----> CLOSING    [close] exit 78
 *   any but CLOSING --HTTP cannot listen (at start)----> CLOSING    [close] exit 78
 *
 * Exit status: 0 clean; 78 configuration (foreign layout, HTTP); with
 * --once also 1 when Redis confirmed a job dead (drain_exit_status), 69
 * when Redis stayed away past the drain timeout, 75 after a hard deadline
 * (unless a more specific status is set already).
 *
 * In STOPPING every handler is asked to stop (SIGTERM to the exec group,
 * the stop flag for built-ins), killed after the kill grace, and its lease
 * released with its newest checkpoint, attempt not charged (Guarantee 4).
 * Loop thread only. */
#ifndef JOBD_DRAIN_H
#define JOBD_DRAIN_H

#include <stdint.h>
#include <uv.h>

#include "config.h"

#define DRAIN_EXIT_DEAD 1         /* --once: a job it ran ended dead */
#define DRAIN_EXIT_UNAVAILABLE 69 /* --once: Redis unreachable past the drain timeout */
#define DRAIN_EXIT_FORCED 75      /* --once: the drain hit its hard deadline */
#define DRAIN_EXIT_CONFIG 78      /* a foreign Redis layout, or HTTP cannot listen */

typedef enum {
    DRAIN_RUNNING = 0, /* claiming and running */
    DRAIN_DRAINING,    /* no claims; in-flight jobs run on until the drain timeout */
    DRAIN_STOPPING,    /* handlers asked to stop; leases being released */
    DRAIN_CLOSING      /* handles closing; the loop ends */
} drain_state_t;

typedef enum {
    DRAIN_EV_NONE = 0,
    DRAIN_EV_SIGNAL,        /* SIGTERM or SIGINT (or daemon_drain) */
    DRAIN_EV_TIMEOUT,       /* the drain timeout passed */
    DRAIN_EV_IDLE,          /* no handler runs, nothing held, nothing in flight */
    DRAIN_EV_ONCE_EMPTY,    /* --once: Redis confirms every queue empty */
    DRAIN_EV_REDIS_AWAY,    /* --once: Redis unreachable past the drain timeout */
    DRAIN_EV_HARD_DEADLINE, /* kill grace + 1 s after STOPPING began */
    DRAIN_EV_FATAL,         /* Redis holds a foreign layout */
    DRAIN_EV_HTTP_FAILED    /* --http cannot listen */
} drain_event_t;

typedef enum {
    DRAIN_ACT_NONE = 0,
    DRAIN_ACT_BEGIN,  /* stop claiming, say draining, arm the drain timeout */
    DRAIN_ACT_STOP,   /* ask every handler to stop, arm the hard deadline */
    DRAIN_ACT_CLOSE,  /* close every handle; the loop ends */
    DRAIN_ACT_ABANDON /* leave unreported leases to expiry, then close (or leave the loop) */
} drain_action_t;

typedef struct {
    drain_state_t state;
    drain_action_t action;
    int exit_code;
} drain_step_t;

/* One transition: from state s on event ev, with exit status code so far
 * and whether this is a --once run. Pure. */
drain_step_t drain_next(drain_state_t s, drain_event_t ev, int code, int once);

/* What the pump sees, for drain_due. */
typedef struct {
    int idle;              /* no handler runs, nothing held, no call in flight */
    int redis_ready;       /* the command connection is ready */
    int64_t redis_away_ms; /* how long Redis has been away (since down, or since start) */
    int exhausted;         /* every queue came back empty with nothing scheduled */
} drain_facts_t;

/* The event due in state s given f, or DRAIN_EV_NONE; *check is set when a
 * --once run should ask Redis whether every queue is empty (the answer
 * comes back as DRAIN_EV_ONCE_EMPTY). Pure. */
drain_event_t drain_due(drain_state_t s, const drain_facts_t *f, int once, int64_t drain_timeout_ms,
                        int *check);

/* The final exit status: code, or DRAIN_EXIT_DEAD for a --once run that
 * would exit 0 after Redis confirmed a job dead. Pure. */
int drain_exit_status(int code, int once, long long dead);

typedef struct {
    void (*begin)(void *arg);   /* DRAIN_ACT_BEGIN, after the timer is armed */
    void (*stop)(void *arg);    /* DRAIN_ACT_STOP */
    void (*close)(void *arg);   /* DRAIN_ACT_CLOSE */
    void (*abandon)(void *arg); /* DRAIN_ACT_ABANDON */
    void (*kick)(void *arg);    /* run the pump soon (--once: every second) */
    void *arg;
} drain_cbs_t;

typedef struct {
    const config_t *cfg;
    drain_state_t state;
    int exit_code;
    drain_cbs_t cbs;
    uv_timer_t timer;      /* the drain timeout, then the hard deadline */
    uv_timer_t once_timer; /* --once: the pump runs at least every second */
} drain_t;

void drain_init(drain_t *d, uv_loop_t *loop, const config_t *cfg, const drain_cbs_t *cbs);
/* Starts the --once timer (if --once). */
void drain_start(drain_t *d);
/* Applies event ev: one transition, and its action. */
void drain_event(drain_t *d, drain_event_t ev);
/* The pump's last step: the event f makes due, if any, applied. Returns 1
 * when a --once emptiness check is due. */
int drain_step(drain_t *d, const drain_facts_t *f);
/* Closes both timers. */
void drain_close(drain_t *d);

#endif
