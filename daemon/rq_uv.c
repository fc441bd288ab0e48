/* rq_uv.c - see rq_uv.h. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "rq_uv.h"

typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t handle;
    int events;
} events_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    events_t *p = h->data;
    if (status != 0) {
        /* libuv stopped the handle: read to let hiredis see the error. */
        if (p->ac) redisAsyncHandleRead(p->ac);
        if (p->ac) redisAsyncFree(p->ac);
        return;
    }
    if (p->ac && (events & UV_READABLE)) redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void update(events_t *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, on_poll);
    else
        uv_poll_stop(&p->handle);
}

static void add_read(void *d)
{
    events_t *p = d;
    p->events |= UV_READABLE;
    update(p);
}

static void del_read(void *d)
{
    events_t *p = d;
    p->events &= ~UV_READABLE;
    update(p);
}

static void add_write(void *d)
{
    events_t *p = d;
    p->events |= UV_WRITABLE;
    update(p);
}

static void del_write(void *d)
{
    events_t *p = d;
    p->events &= ~UV_WRITABLE;
    update(p);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *d)
{
    events_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, on_closed);
}

int rq_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data) return -1;
    events_t *p = calloc(1, sizeof *p);
    if (!p) return -1;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->ac = ac;
    p->handle.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = p;
    return 0;
}
