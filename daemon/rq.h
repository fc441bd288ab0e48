/* rq.h - jobd's Redis: two asynchronous connections on the loop (commands,
 * and pub/sub for wake-ups), reconnect with capped jittered backoff, the
 * script table, EVALSHA with one NOSCRIPT retry.
 *
 * DESIGN: a connection becomes READY only after AUTH, SELECT, the layout
 * version check and SCRIPT LOAD of every script have answered; callers send
 * nothing before (rq_ready). When a connection drops, hiredis answers every
 * pending command with a NULL reply (the caller keeps its work and retries
 * once rq_ready again; on_state tells when), and rq reconnects after
 * min(cap, base * 2^n) ms, jittered to half..full, so a fleet of workers does
 * not reconnect in lockstep. Subscribed channels are re-subscribed on every
 * reconnect. A foreign layout version is fatal (on_state with RQ_FATAL).
 *
 * Every way an attempt can fail goes through the same backoff, n counting
 * the failures in a row since the last READY: connect refused or failing,
 * no READY within the handshake timeout, credentials refused (NOAUTH,
 * WRONGPASS), Redis LOADING its data set, any other handshake error, and a
 * lost connection. The command connection logs the first failure and then
 * one line per backoff step, and once a minute at the cap, saying why (a
 * LOADING Redis is logged once, at info level: it is waited for, not an
 * error); the pub/sub connection logs only while the command connection is
 * up. rq_why_down gives /health/ready the same reason.
 *
 * CLUSTER: the command connection asks CLUSTER SLOTS first; a slot map
 * (redis+cluster://, or a redis:// URL that names a cluster node) makes it
 * a control connection that only reads the map, and rq opens one command
 * connection per primary (rq_node), each with the handshake above (no
 * SELECT; the layout check for the version keys whose slot it serves) and
 * its own backoff. rq_script goes to the primary of the queue's slot,
 * rq_command and rq_script_keys to that of their first key. A MOVED reply
 * sends the call once more where Redis says (and reads the map again); ASK
 * sends ASKING and the call to the target, once. A node that fails makes
 * rq read the map again (a replica takes over after a failover) and only
 * the queues on it wait: rq_ready_for(queue). Pub/sub stays one connection
 * to any node: a script's PUBLISH reaches every node's subscribers.
 *
 * SENTINEL: a third connection asks the URL's Sentinels (in turn, with the
 * same backoff) for the primary's address, then subscribes to
 * +switch-master there. cmd and sub connect to that address and check ROLE
 * first. A +switch-master for our primary, a READONLY reply or a ROLE that
 * is not master drops them and asks again; until they are back, rq_why_down
 * says "redis failover in progress". */
#ifndef JOBD_RQ_H
#define JOBD_RQ_H

#include <hiredis/async.h>
#include <uv.h>

#include "cluster.h"
#include "proto.h"
#include "redis_fail.h"
#include "redis_url.h"

typedef enum {
    RQ_DOWN = 0,  /* not connected; reconnect timer armed */
    RQ_READY,     /* connected, scripts loaded */
    RQ_FATAL,     /* Redis holds an incompatible layout: give up */
    RQ_SUBSCRIBED /* pub/sub (re)subscribed to every channel: wake-ups sent
                     while it was away were missed, so look for work now */
} rq_state_t;

typedef struct rq rq_t;

/* reply is NULL when the command could not complete (connection lost or
 * not ready); otherwise it may be an error reply. It dies when the callback
 * returns: copy what you keep. */
typedef void (*rq_reply_cb)(rq_t *rq, redisReply *reply, void *arg);
typedef void (*rq_state_cb)(rq_t *rq, rq_state_t state, void *arg);
/* A pub/sub message (borrowed strings). */
typedef void (*rq_message_cb)(rq_t *rq, const char *channel, const char *message, void *arg);

#define RQ_MAX_CHANNELS 64

typedef struct rq_conn {
    rq_t *rq;
    int is_sub;
    int is_node;         /* a cluster primary's command connection */
    int is_sentinel;     /* asks the Sentinels, then hears +switch-master */
    int gone;            /* node no longer in the map: closing, never retried */
    cluster_addr_t addr; /* nodes: the primary's address */
    int checks;          /* nodes: the layout keys (1 << schema_key_t) it checks */
    int seed;            /* cmd and sub: which of the URL's hosts they try now */
    redisAsyncContext *ac;
    int ready;
    int handshake_pending;
    int subscribed;          /* subscribe confirmations seen since connecting */
    uv_timer_t retry;        /* the next attempt, or the handshake's deadline */
    int attempts;            /* failed attempts in a row since the last READY */
    int failed;              /* this attempt's failure is noted; its disconnect is ours */
    redis_fail_t why;        /* why the last attempt failed (NONE: none yet) */
    char detail[160];        /* what the socket or Redis said (loggable, JSON-safe) */
    uint64_t retry_at;       /* uv_now() of the next attempt */
    redis_fail_t logged_why; /* the last failure logged in this run */
    uint64_t logged_at;
    char schema_seterr[2][160]; /* the layout check's SET errors (schema.h) */
} rq_conn_t;

struct rq {
    uv_loop_t *loop;
    redis_url_t url;
    char where[600]; /* loggable URL */
    char prefix[128];
    char sha[PROTO_NSCRIPTS][41];
    rq_conn_t cmd, sub;     /* on a cluster cmd only reads the slot map */
    rq_conn_t sent;         /* Sentinel: the connection to one Sentinel */
    cluster_addr_t primary; /* Sentinel: the primary it named (port 0: none yet) */
    int failover;           /* Sentinel: a failover is under way (readiness says so) */
    int cluster;            /* 1 once CLUSTER SLOTS answered with a map */
    cluster_map_t *map;
    rq_conn_t *nodes[CLUSTER_MAX_NODES]; /* one per primary (NULL: free) */
    int refreshing;                      /* a CLUSTER SLOTS is in flight */
    unsigned checked;                    /* layout keys checked (1 << k) */
    int was_ready;                       /* rq_ready at the last on_state */
    char *channels[RQ_MAX_CHANNELS];
    int nchannels;
    rq_state_cb on_state;
    rq_message_cb on_message;
    void *arg;
    int closing, pending_closes;
    void (*on_closed)(rq_t *rq);
    long long commands_sent;
};

/* Sets up rq (no I/O yet). url is copied. */
void rq_init(rq_t *rq, uv_loop_t *loop, const redis_url_t *url, const char *prefix,
             rq_state_cb on_state, rq_message_cb on_message, void *arg);
/* Starts connecting both connections. */
void rq_start(rq_t *rq);
/* Non-zero when commands can be sent: on a cluster, when the layout is
 * checked and at least one primary is connected (rq_ready_for tells which
 * queues can be served). */
int rq_ready(const rq_t *rq);
/* Non-zero when queue's scripts can be sent: the connection to the node
 * serving its slot (the only one, off a cluster) is ready. */
int rq_ready_for(const rq_t *rq, const char *queue);
/* Subscribes to channel now (if connected) and after every reconnect. */
void rq_subscribe(rq_t *rq, const char *channel);

/* Runs script s on queue with the ARGV values in args (steals args' memory:
 * args is reset to empty). cb runs exactly once, unless this returns an
 * error (not ready: -1), in which case it never runs. */
int rq_script(rq_t *rq, proto_script_t s, const char *queue, proto_argv_t *args, rq_reply_cb cb,
              void *arg);
/* Runs script s with the given keys (copied) instead of a queue prefix;
 * the same rules as rq_script. */
int rq_script_keys(rq_t *rq, proto_script_t s, int nkeys, const char *const keys[],
                   proto_argv_t *args, rq_reply_cb cb, void *arg);
/* Runs one plain command (argv copied). Same callback rules. */
int rq_command(rq_t *rq, int argc, const char **argv, const size_t *lens, rq_reply_cb cb,
               void *arg);

/* Writes why the command connection (on a cluster: the first primary that
 * is down) is not ready into out, as one line
 * for /health/ready: "redis unreachable: connection refused (attempt 7,
 * next try in 3.2 s)", "redis not ready: auth failed: WRONGPASS ...".
 * JSON-safe (no quote, backslash or control character). */
void rq_why_down(const rq_t *rq, char *out, size_t len);

/* The backoff before the attempt after the n-th failure in a row (n >= 1),
 * before jitter: min(cap, base * 2^(n-1)) ms. Pure. */
int64_t rq_backoff_ms(int n);
/* Whether the n-th failure in a row, of kind why, gets a log line, given
 * the kind and time (ms) of the last line logged in this run of failures
 * (logged_why REDIS_FAIL_NONE: none yet): yes for the first failure, a new
 * kind, and each backoff step; at the cap once a minute; LOADING only once.
 * Pure. */
int rq_log_due(int n, redis_fail_t why, redis_fail_t logged_why, uint64_t now_ms,
               uint64_t logged_ms);

/* Disconnects after pending replies arrive, closes the timers; on_closed
 * runs when every handle is closed. */
void rq_close(rq_t *rq, void (*on_closed)(rq_t *rq));

#endif
