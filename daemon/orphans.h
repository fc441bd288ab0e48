/* orphans.h - jobd as a child subreaper: the processes a handler leaves
 * behind are reaped when they exit, never left as zombies.
 *
 * DESIGN: in a container jobd is often PID 1, and nobody else would reap a
 * handler's orphaned background processes. orphans_start makes jobd a
 * child subreaper (PR_SET_CHILD_SUBREAPER), so every orphan among its
 * descendants is reparented to jobd wherever it runs, and reaps them.
 * It looks every ORPHANS_SWEEP_MS rather than on SIGCHLD: a SIGCHLD handler
 * made every exec job pay for a signal, libuv's signal pipe and a look
 * (about 2.5% of exec throughput at concurrency 8), while an orphan can
 * well wait a second to be reaped. libuv reaps its own children (each
 * active uv_process_t) one pid at a time, and never hears of a child that
 * someone else reaped: so this module never reaps blindly (no
 * waitpid(-1)). It peeks at an exited child with waitid(WNOWAIT) and reaps
 * it only if it is no active uv_process_t of the loop, and repeats; when
 * the child it sees is libuv's or an owned one (the kernel shows one at a
 * time), it looks again shortly, once that child's owner has reaped it. Children jobd starts itself
 * without libuv (exec.c spawns handlers with posix_spawn and reaps each through its pidfd) are
 * registered with orphans_own from their spawn until their owner has reaped
 * them (under a lock: a spawn may run on the spawner thread), and are left
 * alone the same way. This relies on every child jobd
 * starts being a uv_process_t or registered (no fork, system or popen
 * anywhere else). Its handles are unreferenced: they never keep the loop
 * alive. Loop thread only, but for the registry (see orphans_spawn_begin). */
#ifndef JOBD_ORPHANS_H
#define JOBD_ORPHANS_H

#include <uv.h>

#define ORPHANS_SWEEP_MS 1000 /* how often exited orphans are looked for */

typedef struct orphans {
    uv_loop_t *loop;
    uv_timer_t sweep; /* every ORPHANS_SWEEP_MS */
    uv_timer_t again; /* look again once libuv has reaped its child */
    long long reaped;
} orphans_t;

/* Becomes a subreaper and starts reaping orphans on loop; call before any
 * handler is spawned. Returns 0, or -errno if the kernel refused to make
 * jobd a subreaper (logged; orphans then go to init as before). */
int orphans_start(orphans_t *o, uv_loop_t *loop);
/* Closes the handles; the caller runs the loop until they are closed. */
void orphans_close(orphans_t *o);
/* The registry of children whose owner reaps them (process-wide, so it
 * works before orphans_start and without it): own right after the spawn,
 * disown right after the owner's waitpid. Out of memory, own logs and the
 * child is then treated as an orphan once it has exited (its owner's
 * waitpid then finds nothing and reports it killed). */
void orphans_own(int pid);
void orphans_disown(int pid);
/* Whether pid is registered. */
int orphans_owned(int pid);
/* Around a spawn on another thread (spawner.h): begin before the child
 * exists, end with its pid (0: it was not started) once it does, which
 * registers it. In between the subreaper looks for nothing, so it cannot
 * reap a child that exited before its owner registered it. The registry
 * and these two are thread-safe; the rest is loop thread only. */
void orphans_spawn_begin(void);
void orphans_spawn_end(int pid);

/* Orphans reaped so far, for metrics. */
long long orphans_reaped(const orphans_t *o);

#endif
