/* client_int.h - libjobd internals shared by client.c, manage.c, worker_ops.c
 * and wait.c. Not installed. */
#ifndef JOBD_CLIENT_INT_H
#define JOBD_CLIENT_INT_H

#include <hiredis/hiredis.h>

#include "cluster.h"
#include "envelope.h"
#include "jobd/client.h"
#include "proto.h"
#include "redis_url.h"

/* Most enqueue calls of one batch awaiting their replies. */
#define CLIENT_SUBMIT_WINDOW 8

/* A pipelined reply that says the command did not run where it was sent
 * (MOVED, ASK, NOSCRIPT): read the rest, call client_pipe_recover, start
 * over. Never returned by the public API. */
#define CLIENT_EREDIRECT (-100)

/* One Redis the client talks to (route.c). */
typedef struct {
    cluster_addr_t addr; /* node 0 of a single Redis: the URL's (port 0: unix) */
    redisContext *rc;    /* NULL or broken: reconnected before the next use */
    int pending;         /* pipelined commands whose replies are unread */
    int noscript;        /* answered NOSCRIPT in a pipeline: load the scripts */
} client_node_t;

struct jobd_client {
    redisContext *rc; /* the connection routed to last (borrowed from nodes) */
    int cur;          /* its index in nodes */
    client_node_t nodes[CLUSTER_MAX_NODES];
    int nnodes;
    int cluster;        /* a Redis Cluster: route by slot through map */
    int stale_map;      /* a redirect was seen: read the map before routing */
    int sentinel_next;  /* Sentinel: which of the URL's Sentinels to ask first */
    cluster_map_t *map; /* malloc'd on first use */
    redis_url_t url;
    char prefix[128];
    int timeout_ms;
    size_t payload_max;
    char sha[PROTO_NSCRIPTS][41];
    proto_argv_t argv; /* the command being built */
    proto_script_t argv_script;
    /* Batch submission: one command per window slot, kept until its reply
     * is read so that a NOSCRIPT reply can be answered by sending it again;
     * and the envelope being encoded. Reused from batch to batch. */
    proto_argv_t chunk[CLIENT_SUBMIT_WINDOW];
    envelope_buf_t env;
    char errmsg[1024];
};

/* Sets c's message; returns code. */
int client_err(jobd_client_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* jobd_client_new, with the layout check only if check is set (`jobctl
 * migrate` opens a Redis of an older layout). */
int client_open(const jobd_client_opts_t *opts, jobd_client_t **out, char *errbuf, size_t errlen,
                int check);

/* ---- routing (route.c) ----
 *
 * Every command goes to the node serving its key: the one Redis, or on a
 * Redis Cluster the primary of the key's slot. A single call follows MOVED
 * (reads the map again) and ASK (ASKING first, once) itself; pipelines read
 * every reply, then start over after client_pipe_recover if one said the
 * command did not run there (CLIENT_EREDIRECT). */

/* Opens a new connection to a (NULL: the URL's Redis), AUTH and SELECT
 * done (no SELECT on a cluster). */
int client_connect_addr(jobd_client_t *c, const cluster_addr_t *a, redisContext **out);
/* Makes c->rc a live connection to node i / the node of slot / of key.
 * Returns 0 or JOBD_ECONN. */
int client_use_node(jobd_client_t *c, int i);
int client_route_slot(jobd_client_t *c, int slot);
int client_route(jobd_client_t *c, const char *key);
/* Sentinel: asks the URL's Sentinels for the primary's address (node 0).
 * Returns 0 or JOBD_ECONN. */
int client_discover(jobd_client_t *c);
/* Reads the slot map (CLUSTER SLOTS) from any node we know or the URL's
 * seeds; makes c a cluster client. Returns 0, JOBD_ECONN or JOBD_EINVAL. */
int client_map_refresh(jobd_client_t *c);
/* Sends one command (RESP text) to the node of slot and reads its reply
 * into *out (caller frees; error replies included, redirects followed). */
int client_call(jobd_client_t *c, int slot, const char *cmd, size_t len, redisReply **out);
/* Appends a command (RESP text, or printf-style) for key's node without
 * reading; returns the node index to read its reply from, or an error. */
int client_pipe_append(jobd_client_t *c, const char *key, const char *cmd, size_t len);
int client_pipe_appendf(jobd_client_t *c, const char *key, const char *fmt, ...);
/* Writes every node's buffered commands. */
int client_pipe_flush(jobd_client_t *c);
/* Reads the next reply from node (in the order appended there). Returns 0,
 * CLIENT_EREDIRECT (MOVED/ASK: reply freed, *out NULL) or JOBD_ECONN. */
int client_pipe_read(jobd_client_t *c, int node, redisReply **out);
/* client_pipe_read, with any other error reply turned into JOBD_EREDIS
 * (freed; the message names what). */
int client_pipe_read_ok(jobd_client_t *c, int node, const char *what, redisReply **out);
/* After CLIENT_EREDIRECT, with nothing pending: loads the scripts where
 * NOSCRIPT was seen and reads the map again if a redirect was. */
int client_pipe_recover(jobd_client_t *c);
/* Closes every connection. */
void client_nodes_free(jobd_client_t *c);

/* Starts a script call on c->argv: EVALSHA sha 1 PREFIX:{queue}: */
void client_script_begin(jobd_client_t *c, proto_script_t s, const char *queue);
/* Runs the script call in a on the node of its queue; a NOSCRIPT reply
 * loads the script there and retries once. On success *out is the reply
 * (caller frees). An error reply becomes JOBD_EREDIS with the text in c's
 * message. */
int client_script_run(jobd_client_t *c, proto_argv_t *a, proto_script_t s, redisReply **out);
/* client_script_run on c->argv. */
int client_script_call(jobd_client_t *c, redisReply **out);
/* Appends c->argv to its node's output (pipelined; no reply read).
 * Returns the node index for client_script_reply, or an error. */
int client_script_send(jobd_client_t *c);
/* Reads the next reply from node for a pipelined script call: 0, or
 * CLIENT_EREDIRECT (NOSCRIPT, MOVED, ASK), or an error. */
int client_script_reply(jobd_client_t *c, int node, proto_script_t s, redisReply **out);
/* Runs one plain command on the node serving key (its first key); on
 * success *out is the reply (caller frees). */
int client_command(jobd_client_t *c, const char *key, redisReply **out, const char *fmt, ...);

/* Finds which queue holds job id; writes its name into queue (128 bytes). */
int client_find_queue(jobd_client_t *c, const char *id, char *queue, size_t len);

int client_submit(jobd_client_t *c, const jobd_job_spec_t *specs, size_t n, char *ids_out,
                  int *created);

#endif
