/* client_int.h - libjobd internals shared by client.c, manage.c, worker_ops.c
 * and wait.c. Not installed. */
#ifndef JOBD_CLIENT_INT_H
#define JOBD_CLIENT_INT_H

#include <hiredis/hiredis.h>

#include "envelope.h"
#include "jobd/client.h"
#include "proto.h"
#include "redis_url.h"

/* Most enqueue calls of one batch awaiting their replies. */
#define CLIENT_SUBMIT_WINDOW 8

struct jobd_client {
    redisContext *rc; /* NULL or broken: reconnected before the next call */
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

/* Opens a new connection with c's URL, AUTH and SELECT done. */
int client_connect(jobd_client_t *c, redisContext **out);
/* Makes sure c->rc is a live connection: after a broken one (Redis
 * restarted, network loss) it connects again. Call only when no reply is
 * pending. Returns 0 or JOBD_ECONN. */
int client_ensure_conn(jobd_client_t *c);

/* Starts a script call on c->argv: EVALSHA sha 1 PREFIX:{queue}: */
void client_script_begin(jobd_client_t *c, proto_script_t s, const char *queue);
/* Appends c->argv to the output buffer (pipelined; no reply read). */
int client_script_send(jobd_client_t *c);
/* Reads the next reply for a script call. With can_retry (the call in
 * c->argv is the one answered), a NOSCRIPT reply reloads the script and
 * retries once. On success *out is the reply (caller frees). An error reply
 * becomes JOBD_EREDIS with the text in c's message. */
int client_script_reply(jobd_client_t *c, proto_script_t s, redisReply **out, int can_retry);
/* Sends c->argv and reads its reply (after client_ensure_conn). */
int client_script_call(jobd_client_t *c, redisReply **out);
/* Runs one plain command (after client_ensure_conn); on success *out is
 * the reply (caller frees). */
int client_command(jobd_client_t *c, redisReply **out, const char *fmt, ...);

/* Finds which queue holds job id; writes its name into queue (128 bytes). */
int client_find_queue(jobd_client_t *c, const char *id, char *queue, size_t len);

int client_submit(jobd_client_t *c, const jobd_job_spec_t *specs, size_t n, char *ids_out,
                  int *created);

#endif
