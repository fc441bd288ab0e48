/* rq_int.h - what rq's modules share among themselves; callers use rq.h.
 *
 * rq is four files around the two structs rq.h defines (rq_t, rq_conn_t):
 *   rq.c           the public API: init, start, readiness, subscribe,
 *                  rq_script/rq_command with the script table (EVALSHA and
 *                  one NOSCRIPT retry), rq_why_down and close;
 *   rq_conn.c      one connection: connect, the handshake, the backoff and
 *                  why each attempt failed;
 *   rq_cluster.c   Redis Cluster: the slot map, routing by slot, MOVED/ASK
 *                  and the connection per primary;
 *   rq_sentinel.c  Sentinel: asking for the primary, +switch-master and
 *                  failover.
 *
 * DESIGN: one loop, one thread; everything here runs on it. The handshake
 * (rq_conn.c) asks rq_cluster.c and rq_sentinel.c for their steps, and
 * they report back through rq_conn_step_done and rq_conn_fail. What the
 * modules guarantee each other:
 *   - a handshake step is counted in c->handshake_pending when queued and
 *     answered by exactly one rq_conn_step_done or rq_conn_fail; a NULL
 *     reply (connection lost) answers nothing: the disconnect callback
 *     takes over;
 *   - a hiredis callback finding ac->data NULL belongs to a connection rq
 *     dropped on purpose, and does nothing;
 *   - every failed attempt is noted once (the first reason wins) and ends
 *     in one retry through the backoff, in rq_conn.c;
 *   - on_state hears RQ_READY and RQ_DOWN from rq_emit_state only;
 *   - rq->nodes owns the cluster connections: a node dropped from the map
 *     is freed when its timer has closed, the rest by rq_close_done.
 *
 * This header does not include rq.h (rq.c includes it, and the module
 * graph has no cycle): it names the two structs, and each .c file includes
 * rq.h for their fields. */
#ifndef JOBD_RQ_INT_H
#define JOBD_RQ_INT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "redis_fail.h"

typedef struct rq rq_t;
typedef struct rq_conn rq_conn_t;

/* rq.c */

/* Tells the caller (on_state) when rq as a whole became ready (again: on a
 * cluster, every time a primary comes up, so its queues are tried at once;
 * node_came_up) or stopped being ready. */
void rq_emit_state(rq_t *rq, int node_came_up);
/* Every handle is closed: frees the cluster connections and the map, then
 * runs the owner's on_closed. */
void rq_close_done(rq_t *rq);

/* rq_conn.c */

/* Starts an attempt on c (unless rq is closing or c is gone): connects,
 * then queues the handshake; a failure goes to the backoff. */
void rq_conn_connect(rq_conn_t *c);
/* Starts c's next attempt from the loop now, without backing off. */
void rq_conn_retry_now(rq_conn_t *c);
/* Notes why this attempt failed, if nothing was noted yet (the first reason
 * wins: a refused AUTH is followed by NOAUTH for everything queued behind
 * it). what and said are copied; either may be NULL. */
void rq_conn_note_failure(rq_conn_t *c, redis_fail_t why, const char *what, const char *said);
/* Writes the reason of c's last failure in words into out: "connection
 * refused", "auth failed: WRONGPASS ...". JSON-safe. */
void rq_conn_reason(const rq_conn_t *c, char *out, size_t len);
/* Fails c's handshake at step what because Redis said said (NULL: an
 * unexpected reply): notes why and disconnects; the retry follows from the
 * disconnect callback. Only the first failure of an attempt counts. */
void rq_conn_fail(rq_conn_t *c, const char *what, const char *said);
/* One step of c's handshake is done; after the last, c is READY. */
void rq_conn_step_done(rq_conn_t *c);
/* Queues the layout check (schema.h) for the keys in mask (1 << key) and
 * SCRIPT LOAD of every script, as handshake steps. */
void rq_conn_handshake_data(rq_conn_t *c, int mask);
/* Sends SUBSCRIBE channel on the pub/sub connection c (borrowed). */
void rq_conn_subscribe(rq_conn_t *c, const char *channel);

/* rq_cluster.c */

/* The command connection serving slot: the one connection off a cluster,
 * the primary's on one (NULL: no primary known, or not connected yet). */
rq_conn_t *rq_cluster_conn_for_slot(const rq_t *rq, int slot);
/* The connection to the primary at a (NULL: none). */
rq_conn_t *rq_cluster_node_at(const rq_t *rq, const cluster_addr_t *a);
/* Queues CLUSTER SLOTS as a step of the command connection's handshake: a
 * map makes it the control connection of a cluster, an error means one
 * Redis (the layout check and the scripts follow on c). */
void rq_cluster_ask_slots(rq_conn_t *c);
/* Queues a primary's handshake: the layout check of the keys whose slot it
 * serves, and the scripts. */
void rq_cluster_node_handshake(rq_conn_t *c);
/* Reads the slot map again (a primary failed or sent MOVED). One at a
 * time; while the control connection is down its next handshake does it. */
void rq_cluster_refresh(rq_t *rq);
/* A MOVED or ASK reply r to a call (which then did not run): returns 1 if
 * the call is to go out again, at most twice in all (*redirects counts),
 * with *ask set to ASK's target, which the call goes to after ASKING.
 * MOVED patches the slot's owner at once and reads the whole map again. */
int rq_cluster_redirect(rq_t *rq, const redisReply *r, int *redirects, cluster_addr_t *ask);

/* rq_sentinel.c */

/* Queues the Sentinel connection's handshake: the primary's address, then
 * SUBSCRIBE +switch-master. */
void rq_sentinel_ask(rq_conn_t *c);
/* Queues ROLE as a handshake step of cmd or sub: anything but a primary
 * fails the attempt and asks the Sentinels again. */
void rq_sentinel_check_role(rq_conn_t *c);
/* Asks the Sentinels again (a failover is under way). */
void rq_sentinel_rediscover(rq_t *rq);
/* The primary answered READONLY: it was demoted under us. Asks the
 * Sentinels again and drops cmd and sub, which reconnect to the new one. */
void rq_sentinel_demoted(rq_t *rq);

#endif
