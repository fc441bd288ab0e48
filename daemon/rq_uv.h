/* rq_uv.h - attaches a hiredis async context to a libuv loop.
 *
 * DESIGN: our own copy of hiredis's libuv adapter, because the one Debian 12
 * ships (hiredis 0.14) ignores a poll error: libuv reports POLLERR (a peer
 * that reset the connection, as a killed redis-server does) by stopping the
 * poll handle and passing a non-zero status, and that adapter just returns,
 * so the connection hangs forever, never read and never declared lost. Here
 * an error is read (hiredis then sees the failure and disconnects), and if
 * the context survives that, it is freed, which runs the disconnect
 * callback: rq reconnects either way. */
#ifndef JOBD_RQ_UV_H
#define JOBD_RQ_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Returns 0, or -1 if ac is already attached or memory ran out. */
int rq_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
