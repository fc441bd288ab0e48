/* spawner.h - threads of their own that start handler processes, so that
 * the loop never waits for a child to exec.
 *
 * DESIGN: posix_spawn suspends the thread that calls it until the child has
 * called execve (vfork semantics: the child runs on the caller's memory).
 * On a busy machine the new child first waits for a CPU, so a spawn takes
 * far longer in wall time than in CPU time: measured at 1,400 exec jobs/s on
 * 2 cores, 214 us at the median and 1.2 ms at p90, and the loop spent 69% of
 * its time suspended in posix_spawn while exits, acknowledgements and claims
 * waited behind it. SPAWNER_THREADS threads take the requests instead, in
 * the order they were submitted (spawner_submit, loop thread), run each
 * one's work, and hand them back to the loop through one uv_async_t: each
 * request's done callback runs on the loop thread, in the order the work
 * ended. With the pump's hold (daemon.h), exec /bin/true at concurrency 8
 * went from 1,436 to 1,473 jobs/s (medians of 6 alternating runs, better in
 * 5), with the loop free for everything else. Two threads rather than one,
 * so that one slow exec (a cold binary, a slow file system) does not hold
 * up every other spawn; one, two and three threads measured alike here.
 * The threads block every signal and touch nothing but the requests (work
 * must only touch its request and thread-safe state). The async handle
 * keeps the loop alive only while requests are out. spawner_close stops the
 * threads once the queue is empty, joins them, and closes the handle (the
 * caller runs the loop until it is closed); no request may be out by then. */
#ifndef JOBD_SPAWNER_H
#define JOBD_SPAWNER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#define SPAWNER_THREADS 2

typedef struct spawn_req spawn_req_t;
struct spawn_req {
    void (*work)(spawn_req_t *r); /* on the spawner thread */
    void (*done)(spawn_req_t *r); /* then on the loop thread; may free r */
    spawn_req_t *next;            /* the spawner's */
};

typedef struct spawner {
    uv_loop_t *loop;
    uv_async_t async;
    pthread_t threads[SPAWNER_THREADS];
    int nthreads; /* started and not joined */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    spawn_req_t *todo, *todo_tail; /* submitted, work not run yet */
    spawn_req_t *done, *done_tail; /* work run, done not called yet */
    int stop;                      /* under mu: the thread exits once todo is empty */
    int out;                       /* loop thread: submitted, done not yet called */
    int open;                      /* spawner_init succeeded, spawner_close not called */
} spawner_t;

/* Starts the threads and opens the handle on loop. Returns 0 or a negative
 * errno (nothing is left running or open then). */
int spawner_init(spawner_t *s, uv_loop_t *loop);
/* Queues r (owned by the caller, untouched by it until r->done runs). */
void spawner_submit(spawner_t *s, spawn_req_t *r);
/* Requests submitted whose done callback has not run yet. */
int spawner_backlog(const spawner_t *s);

#define SPAWNER_HOLD_MS 5 /* longest spawner_hold in a row */

/* The caller's state for spawner_hold. Zero-initialise. */
typedef struct {
    int holding;
    uint64_t since; /* when the hold began, on the caller's clock (ms) */
} spawner_hold_t;

/* Whether to hold Redis calls back now (daemon.h's pump), given backlog
 * (spawner_backlog) and now (ms): while more than one spawn waits, for at
 * most SPAWNER_HOLD_MS in a row, so that a spawn that hangs (an execve on a
 * hung file system) never holds back every outcome. The run of holds ends
 * when the backlog is down to one. Pure. */
int spawner_hold(spawner_hold_t *h, int backlog, uint64_t now);
/* Joins the threads and closes the handle; idempotent, and nothing after a
 * failed spawner_init. */
void spawner_close(spawner_t *s);

#endif
