/* spawner.c - see spawner.h. */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>

#include "spawner.h"

static void stop_thread(spawner_t *s);

/* Appends r to a list (under the lock). */
static void append(spawn_req_t **head, spawn_req_t **tail, spawn_req_t *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static void *thread_main(void *arg)
{
    spawner_t *s = arg;
    pthread_setname_np(pthread_self(), "jobd-spawn"); /* for top -H, gdb and the tests */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        spawn_req_t *r = s->todo;
        if (!r) break; /* stop, and nothing left */
        s->todo = r->next;
        if (!s->todo) s->todo_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        r->work(r);
        pthread_mutex_lock(&s->mu);
        append(&s->done, &s->done_tail, r);
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void on_async(uv_async_t *a)
{
    spawner_t *s = a->data;
    pthread_mutex_lock(&s->mu);
    spawn_req_t *r = s->done;
    s->done = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (r) {
        spawn_req_t *next = r->next;
        if (--s->out == 0) uv_unref((uv_handle_t *)&s->async);
        r->done(r); /* may free r */
        r = next;
    }
}

int spawner_init(spawner_t *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* The thread first, then the handle: a failure leaves nothing open on
     * the loop. The thread starts with every signal blocked: signals are
     * the loop's. It touches the handle only for a request, and none can
     * come before this returns. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = 0;
    for (int i = 0; i < SPAWNER_THREADS && rc == 0; i++) {
        rc = -pthread_create(&s->threads[i], NULL, thread_main, s);
        if (rc == 0) s->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc == 0) {
        rc = uv_async_init(loop, &s->async, on_async);
        if (rc == 0) {
            s->async.data = s;
            uv_unref((uv_handle_t *)&s->async);
            s->open = 1;
            return 0;
        }
        stop_thread(s);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    return rc;
}

int spawner_backlog(const spawner_t *s)
{
    return s->out;
}

int spawner_hold(spawner_hold_t *h, int backlog, uint64_t now)
{
    if (backlog <= 1) {
        h->holding = 0;
        return 0;
    }
    if (!h->holding) {
        h->holding = 1;
        h->since = now;
    }
    return now - h->since < SPAWNER_HOLD_MS;
}

void spawner_submit(spawner_t *s, spawn_req_t *r)
{
    if (s->out++ == 0) uv_ref((uv_handle_t *)&s->async);
    pthread_mutex_lock(&s->mu);
    append(&s->todo, &s->todo_tail, r);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void stop_thread(spawner_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    s->nthreads = 0;
}

void spawner_close(spawner_t *s)
{
    if (!s->open) return;
    stop_thread(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    uv_close((uv_handle_t *)&s->async, NULL);
    s->open = 0;
}
