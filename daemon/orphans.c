/* orphans.c - see orphans.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "log.h"
#include "orphans.h"

#define AGAIN_MS 10

typedef struct {
    int pid;
    int found;
} find_t;

static void find_process(uv_handle_t *h, void *arg)
{
    find_t *f = arg;
    /* Active: libuv has not reaped it yet and will, on its own SIGCHLD. */
    if (h->type == UV_PROCESS && uv_is_active(h) && ((uv_process_t *)h)->pid == f->pid)
        f->found = 1;
}

/* Whether libuv waits for pid (a handler that has not been reaped). */
static int libuv_child(uv_loop_t *loop, int pid)
{
    find_t f = {pid, 0};
    uv_walk(loop, find_process, &f);
    return f.found;
}

/* Pids of children reaped by their owner: a small unordered array (at most
 * about the concurrency plus the pools' processes). */
static int *owned;
static size_t nowned, owned_cap;
static int spawning; /* spawns between orphans_spawn_begin and _end */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void own_locked(int pid)
{
    if (nowned == owned_cap) {
        size_t cap = owned_cap ? owned_cap * 2 : 64;
        int *grown = realloc(owned, cap * sizeof *grown);
        if (!grown) {
            log_error("out of memory registering child %d with the subreaper", pid);
            return;
        }
        owned = grown;
        owned_cap = cap;
    }
    owned[nowned++] = pid;
}

void orphans_own(int pid)
{
    pthread_mutex_lock(&mu);
    own_locked(pid);
    pthread_mutex_unlock(&mu);
}

void orphans_spawn_begin(void)
{
    pthread_mutex_lock(&mu);
    spawning++;
    pthread_mutex_unlock(&mu);
}

void orphans_spawn_end(int pid)
{
    pthread_mutex_lock(&mu);
    if (pid > 0) own_locked(pid);
    spawning--;
    pthread_mutex_unlock(&mu);
}

void orphans_disown(int pid)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nowned; i++) {
        if (owned[i] == pid) {
            owned[i] = owned[--nowned];
            break;
        }
    }
    if (nowned == 0) { /* nothing left: give the memory back (no leak at exit) */
        free(owned);
        owned = NULL;
        owned_cap = 0;
    }
    pthread_mutex_unlock(&mu);
}

static int owned_locked(int pid)
{
    for (size_t i = 0; i < nowned; i++)
        if (owned[i] == pid) return 1;
    return 0;
}

int orphans_owned(int pid)
{
    pthread_mutex_lock(&mu);
    int r = owned_locked(pid);
    pthread_mutex_unlock(&mu);
    return r;
}

static void on_again(uv_timer_t *t);

/* One exited orphan reaped: 1; none to reap now: 0; one to look at again
 * shortly: -1. The lock is held from the look to the reap, so a spawn on
 * the spawner thread cannot slip its child in between. */
static int look_and_reap(orphans_t *o, int *status, int *pid)
{
    pthread_mutex_lock(&mu);
    int r = -1;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (spawning) {
        /* A child may exist that is not registered yet. */
    } else if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0) {
        r = 0; /* WNOWAIT: looked without reaping, since it may be libuv's */
    } else if (!owned_locked(si.si_pid) && !libuv_child(o->loop, si.si_pid)) {
        *pid = si.si_pid;
        r = waitpid(si.si_pid, status, WNOHANG) == si.si_pid;
    }
    pthread_mutex_unlock(&mu);
    return r;
}

static void reap(orphans_t *o)
{
    for (;;) {
        int status = 0, pid = 0;
        int r = look_and_reap(o, &status, &pid);
        if (r < 0) {
            uv_timer_start(&o->again, on_again, AGAIN_MS, 0);
            return;
        }
        if (r == 0) return;
        o->reaped++;
        if (WIFSIGNALED(status))
            log_debug("reaped orphaned process %d (killed by signal %d)", pid, WTERMSIG(status));
        else
            log_debug("reaped orphaned process %d (exit status %d)", pid, WEXITSTATUS(status));
    }
}

static void on_again(uv_timer_t *t)
{
    reap(t->data);
}

static void on_sweep(uv_timer_t *t)
{
    reap(t->data);
}

int orphans_start(orphans_t *o, uv_loop_t *loop)
{
    memset(o, 0, sizeof *o);
    o->loop = loop;
    int rc = 0;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        rc = -errno;
        log_warn("cannot become a child subreaper (%s): orphans of handlers go to init",
                 strerror(errno));
    }
    uv_timer_init(loop, &o->sweep);
    uv_timer_init(loop, &o->again);
    o->sweep.data = o->again.data = o;
    uv_timer_start(&o->sweep, on_sweep, ORPHANS_SWEEP_MS, ORPHANS_SWEEP_MS);
    uv_unref((uv_handle_t *)&o->sweep);
    uv_unref((uv_handle_t *)&o->again);
    return rc;
}

void orphans_close(orphans_t *o)
{
    if (!o->loop) return;
    uv_close((uv_handle_t *)&o->sweep, NULL);
    uv_close((uv_handle_t *)&o->again, NULL);
    o->loop = NULL;
}

long long orphans_reaped(const orphans_t *o)
{
    return o ? o->reaped : 0;
}
