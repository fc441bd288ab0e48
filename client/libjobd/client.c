/* client.c - the blocking libjobd client (see include/jobd/client.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jobd/version.h"
#include "envelope.h"
#include "keys.h"
#include "proto.h"
#include "redis_fail.h"
#include "schema.h"
#include "cluster.h"

__attribute__((format(printf, 3, 4))) int client_err(jobd_client_t *c, int code, const char *fmt,
                                                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *jobd_client_errmsg(const jobd_client_t *c)
{
    return c->errmsg;
}

const char *jobd_client_prefix(const jobd_client_t *c)
{
    return c->prefix;
}

/* Turns a failed or error reply into a code, freeing it. */
static int reply_error(jobd_client_t *c, redisContext *rc, redisReply *r, const char *what)
{
    if (!r && !rc) return client_err(c, JOBD_ECONN, "Redis: %s: not connected", what);
    if (!r) {
        char where[600];
        redis_url_describe(&c->url, where, sizeof where);
        return client_err(c, JOBD_ECONN, "Redis at %s: %s failed: %s", where, what,
                          rc->errstr[0] ? rc->errstr : "connection lost");
    }
    int code =
        r->type == REDIS_REPLY_ERROR
            ? client_err(c, JOBD_EREDIS, "Redis: %s: %.*s", what, (int)r->len, r->str)
            : client_err(c, JOBD_EREDIS, "Redis: %s: unexpected reply (type %d)", what, r->type);
    freeReplyObject(r);
    return code;
}

/* reply_error for the commands that set a connection up: a reply that says
 * Redis refused the credentials (NOAUTH, WRONGPASS, ERR ... AUTH), lacks a
 * permission or is still loading its data is JOBD_ECONN (jobctl: exit 69,
 * "Redis unreachable or refused the credentials"), not a failed command. */
static int setup_error(jobd_client_t *c, redisContext *rc, redisReply *r, const char *what)
{
    redis_fail_t k =
        r && r->type == REDIS_REPLY_ERROR ? redis_fail_of_reply(r->str) : REDIS_FAIL_OTHER;
    if (k == REDIS_FAIL_AUTH || k == REDIS_FAIL_NOPERM) {
        /* The reply names neither the password nor the URL's secret. */
        char where[600];
        redis_url_describe(&c->url, where, sizeof where);
        client_err(c, JOBD_ECONN,
                   "Redis at %s refused the credentials (%s): %.*s (the password comes from the "
                   "URL or the file named by JOBD_REDIS_PASSWORD_FILE)",
                   where, what, (int)r->len, r->str);
        freeReplyObject(r);
        return JOBD_ECONN;
    }
    int code = reply_error(c, rc, r, what);
    return redis_fail_is_unavailable(k) ? JOBD_ECONN : code;
}

int client_connect_addr(jobd_client_t *c, const cluster_addr_t *a, redisContext **out)
{
    struct timeval tv = {c->timeout_ms / 1000, (long)(c->timeout_ms % 1000) * 1000};
    redisContext *rc = !a && c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, tv)
                       : a                  ? redisConnectWithTimeout(a->host, a->port, tv)
                                            : redisConnectWithTimeout(c->url.host, c->url.port, tv);
    char where[600];
    if (a)
        snprintf(where, sizeof where, "%s:%d", a->host, a->port);
    else
        redis_url_describe(&c->url, where, sizeof where);
    if (!rc) return client_err(c, JOBD_ENOMEM, "cannot allocate a Redis context");
    if (rc->err) {
        int code = client_err(c, JOBD_ECONN, "Redis unreachable at %s: %s", where, rc->errstr);
        redisFree(rc);
        return code;
    }
    /* hiredis 0.14 opens its socket without SOCK_CLOEXEC: a program that
     * runs others must not hand them a connection authenticated as itself. */
    int fl = fcntl(rc->fd, F_GETFD);
    if (fl >= 0) fcntl(rc->fd, F_SETFD, fl | FD_CLOEXEC);
    redisSetTimeout(rc, tv);
    redisReply *r;
    /* An ACL user authenticates with its password (from the URL or the
     * password file; empty for a nopass user); the default user with the
     * password alone. */
    if (c->url.user[0] || c->url.password[0]) {
        r = c->url.user[0] ? redisCommand(rc, "AUTH %s %s", c->url.user, c->url.password)
                           : redisCommand(rc, "AUTH %s", c->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            int code = setup_error(c, rc, r, "AUTH");
            if (code == JOBD_EREDIS) code = JOBD_ECONN; /* refused, whatever the words */
            redisFree(rc);
            return code;
        }
        freeReplyObject(r);
    }
    /* A cluster has database 0 only (and refuses SELECT). */
    if (c->url.db && !c->cluster) {
        r = redisCommand(rc, "SELECT %d", c->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            int code = setup_error(c, rc, r, "SELECT");
            redisFree(rc);
            return code;
        }
        freeReplyObject(r);
    }
    *out = rc;
    return 0;
}

/* Runs one plain command given as an argv on the node of its key argv[1]. */
static int call_argv(jobd_client_t *c, int argc, const char **argv, const size_t *lens,
                     redisReply **out)
{
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    int rc = client_call(c, cluster_key_slot(argv[1], lens[1]), cmd, (size_t)len, out);
    redisFreeCommand(cmd);
    return rc;
}

/* Checks the layout version (schema.h): per key SET NX then GET, each on
 * the node of its key (the two keys may live on different cluster nodes). */
static int check_schema(jobd_client_t *c)
{
    int rc = 0;
    for (int k = 0; k < SCHEMA_NKEYS && rc == 0; k++) {
        schema_cmd_t cmd[2];
        redisReply *r[2] = {NULL, NULL};
        for (int g = 0; g < 2 && rc == 0; g++) {
            schema_cmd(&cmd[g], c->prefix, (schema_key_t)k, g);
            rc = call_argv(c, cmd[g].argc, cmd[g].argv, cmd[g].lens, &r[g]);
            if (rc == JOBD_ECONN && c->rc) rc = setup_error(c, c->rc, NULL, "layout check");
        }
        if (rc == 0 && r[0] && r[1]) {
            const char *said;
            char err[768];
            int v = schema_verdict(c->prefix, (schema_key_t)k,
                                   r[0]->type == REDIS_REPLY_ERROR ? r[0]->str : NULL, r[1]->type,
                                   r[1]->str, &said, err, sizeof err);
            if (v == JOBD_EREDIS && said) {
                /* Classified as the handshake's other replies: NOAUTH,
                 * NOPERM and LOADING mean Redis cannot be used as it is. */
                redis_fail_t why = redis_fail_of_reply(said);
                rc = client_err(c, redis_fail_is_unavailable(why) ? JOBD_ECONN : JOBD_EREDIS,
                                "Redis: %s", err);
            } else if (v < 0) {
                rc = client_err(c, v, "%s%s", v == JOBD_ESCHEMA ? "" : "Redis: ", err);
            }
        }
        for (int g = 0; g < 2; g++)
            if (r[g]) freeReplyObject(r[g]);
    }
    return rc;
}

static int load_script(jobd_client_t *c, proto_script_t s)
{
    size_t len;
    const char *text = proto_script_text(s, &len);
    redisReply *r = redisCommand(c->rc, "SCRIPT LOAD %b", text, len);
    if (!r || r->type != REDIS_REPLY_STRING) return setup_error(c, c->rc, r, "SCRIPT LOAD");
    snprintf(c->sha[s], sizeof c->sha[s], "%s", r->str);
    freeReplyObject(r);
    return 0;
}

int client_open(const jobd_client_opts_t *opts, jobd_client_t **out, char *errbuf, size_t errlen,
                int check)
{
    char dummy[8];
    if (!errbuf) {
        errbuf = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    jobd_client_opts_t o = {0};
    if (opts) o = *opts;
    jobd_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return JOBD_ENOMEM;
    }
    int rc = redis_url_parse(o.url, &c->url, errbuf, errlen);
    const char *pwfile = o.password_file ? o.password_file : getenv("JOBD_REDIS_PASSWORD_FILE");
    if (rc == 0) rc = redis_url_password_file(&c->url, pwfile, errbuf, errlen);
    if (rc < 0) goto fail;
    if ((rc = keys_prefix_check(o.prefix ? o.prefix : "jobd", errbuf, errlen)) < 0) goto fail;
    snprintf(c->prefix, sizeof c->prefix, "%s", o.prefix ? o.prefix : "jobd");
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 5000;
    c->payload_max = o.payload_max ? o.payload_max : JOBD_PAYLOAD_MAX;
    proto_argv_init(&c->argv);
    for (int i = 0; i < CLIENT_SUBMIT_WINDOW; i++)
        proto_argv_init(&c->chunk[i]);
    /* Node 0 is the URL's Redis (see route.c). */
    c->nnodes = 1;
    snprintf(c->nodes[0].addr.host, sizeof c->nodes[0].addr.host, "%.255s",
             c->url.is_unix ? c->url.path : c->url.host);
    c->nodes[0].addr.port = c->url.is_unix ? 0 : c->url.port;
    if (c->url.kind == REDIS_URL_CLUSTER) {
        if ((rc = client_map_refresh(c)) < 0) goto fail_msg;
    } else if (c->url.kind == REDIS_URL_SENTINEL) {
        c->nodes[0].addr.port = 0; /* unknown until a Sentinel names it */
    }
    if ((rc = client_route_slot(c, 0)) < 0) goto fail_msg;
    if (check && (rc = check_schema(c)) < 0) goto fail_msg;
    /* Loaded on one node: that gives the SHAs. Other nodes of a cluster
     * answer NOSCRIPT once and load them then. */
    for (int s = 0; s < PROTO_NSCRIPTS; s++)
        if ((rc = load_script(c, (proto_script_t)s)) < 0) goto fail_msg;
    *out = c;
    return 0;
fail_msg:
    snprintf(errbuf, errlen, "%s", c->errmsg);
fail:
    jobd_client_free(c);
    return rc;
}

int jobd_client_new(const jobd_client_opts_t *opts, jobd_client_t **out, char *errbuf,
                    size_t errlen)
{
    return client_open(opts, out, errbuf, errlen, 1);
}

void jobd_client_free(jobd_client_t *c)
{
    if (!c) return;
    client_nodes_free(c);
    proto_argv_free(&c->argv);
    for (int i = 0; i < CLIENT_SUBMIT_WINDOW; i++)
        proto_argv_free(&c->chunk[i]);
    envelope_buf_free(&c->env);
    memset(c->url.password, 0, sizeof c->url.password);
    free(c);
}

void client_script_begin(jobd_client_t *c, proto_script_t s, const char *queue)
{
    char qp[KEYS_MAX];
    keys_queue_prefix(qp, c->prefix, queue);
    proto_argv_reset(&c->argv);
    proto_argv_script(&c->argv, c->sha[s], qp);
    c->argv_script = s;
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

/* The slot of a script call: its key, the queue prefix in argv[3]. */
static int script_slot(const proto_argv_t *a)
{
    return cluster_key_slot(a->buf + a->offs[3], a->lens[3]);
}

int client_script_run(jobd_client_t *c, proto_argv_t *a, proto_script_t s, redisReply **out)
{
    size_t len;
    const char *cmd = proto_argv_resp(a, &len);
    if (!cmd) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    redisReply *r = NULL;
    int rc = client_call(c, script_slot(a), cmd, len, &r);
    if (rc < 0) return rc;
    if (is_noscript(r)) {
        /* This node lost its script cache (restart, failover) or never had
         * it (another cluster node): load the script there and retry once.
         * A SHA1 is always 40 characters, so the new one overwrites argv[1]
         * in place. */
        freeReplyObject(r);
        if ((rc = load_script(c, s)) < 0) return rc;
        memcpy(a->buf + a->offs[1], c->sha[s], 40);
        if (!(cmd = proto_argv_resp(a, &len)))
            return client_err(c, JOBD_ENOMEM, "out of memory building a command");
        if ((rc = client_call(c, script_slot(a), cmd, len, &r)) < 0) return rc;
    }
    if (!r) return client_err(c, JOBD_ECONN, "Redis: no reply");
    if (r->type == REDIS_REPLY_ERROR) return reply_error(c, c->rc, r, proto_script_name(s));
    *out = r;
    return 0;
}

int client_script_call(jobd_client_t *c, redisReply **out)
{
    return client_script_run(c, &c->argv, c->argv_script, out);
}

int client_script_send(jobd_client_t *c)
{
    size_t len;
    const char *cmd = proto_argv_resp(&c->argv, &len);
    if (!cmd) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    return client_pipe_append(c, c->argv.buf + c->argv.offs[3], cmd, len);
}

int client_script_reply(jobd_client_t *c, int node, proto_script_t s, redisReply **out)
{
    int rc = client_pipe_read(c, node, out);
    if (rc < 0) return rc;
    if (!*out) return JOBD_ECONN;
    if (is_noscript(*out)) {
        /* Loaded once the pipeline is drained (client_pipe_recover). */
        freeReplyObject(*out);
        *out = NULL;
        c->nodes[node].noscript = 1;
        return CLIENT_EREDIRECT;
    }
    if ((*out)->type == REDIS_REPLY_ERROR)
        return reply_error(c, c->nodes[node].rc, *out, proto_script_name(s));
    return 0;
}

int client_pipe_recover(jobd_client_t *c)
{
    for (int i = 0; i < c->nnodes; i++) {
        if (!c->nodes[i].noscript) continue;
        c->nodes[i].noscript = 0;
        int rc = client_use_node(c, i);
        for (int s = 0; rc == 0 && s < PROTO_NSCRIPTS; s++)
            rc = load_script(c, (proto_script_t)s);
        if (rc < 0) return rc;
    }
    return c->stale_map ? client_map_refresh(c) : 0;
}

int client_command(jobd_client_t *c, const char *key, redisReply **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    redisReply *r;
    int rc = client_call(c, cluster_key_slot(key, strlen(key)), cmd, (size_t)len, &r);
    redisFreeCommand(cmd);
    if (rc < 0) return rc;
    if (r->type == REDIS_REPLY_ERROR) return reply_error(c, c->rc, r, "command");
    *out = r;
    return 0;
}

/* ---- submitting ----
 *
 * A batch goes out as enqueue.lua calls of up to JOBD_BATCH_CHUNK
 * consecutive jobs of one queue, pipelined: each call is written as soon as
 * it is built, with at most CLIENT_SUBMIT_WINDOW calls unanswered, so that
 * Redis runs one chunk while we encode the next. Every reply is read before
 * we return, on every path, so the connection never holds a stale reply. */

typedef struct {
    size_t first, count; /* count 0: a queue registration (SADD) of specs[first] */
    int slot;            /* c->chunk[slot] holds the enqueue command */
    int node;            /* the connection it went out on (route.c) */
} chunk_t;

typedef struct {
    jobd_client_t *c;
    const jobd_job_spec_t *specs;
    char *ids;
    int *created;
    chunk_t ring[CLIENT_SUBMIT_WINDOW];
    size_t head, inflight;
    chunk_t resend[CLIENT_SUBMIT_WINDOW];
    size_t nresend;
} submit_t;

static void push(submit_t *st, chunk_t ch)
{
    st->ring[(st->head + st->inflight) % CLIENT_SUBMIT_WINDOW] = ch;
    st->inflight++;
}

/* Reads one enqueue reply into ids[first..first+count): per job 1 (created),
 * 0 (the id existed) or the id of the job that first used the idempotency
 * key. Frees r. */
static int enqueue_reply(submit_t *st, const chunk_t *ch, redisReply *r)
{
    jobd_client_t *c = st->c;
    if (!r) return client_err(c, JOBD_ECONN, "Redis: no reply from enqueue");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != ch->count) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from enqueue");
    }
    for (size_t i = 0; i < ch->count; i++) {
        redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING) {
            char *dst = st->ids + (ch->first + i) * (JOBD_ID_LEN + 1);
            size_t n = e->len < JOBD_ID_LEN ? e->len : JOBD_ID_LEN;
            memcpy(dst, e->str, n);
            dst[n] = '\0';
        }
        if (st->created) *st->created = e->type == REDIS_REPLY_INTEGER && e->integer == 1;
    }
    freeReplyObject(r);
    return 0;
}

/* Reads the reply at the head of the window. A reply saying the command did
 * not run there (NOSCRIPT: the node's script cache is empty; MOVED or ASK:
 * the queue's slot lives elsewhere) puts the chunk on the resend list
 * instead of failing. */
static int read_head(submit_t *st)
{
    jobd_client_t *c = st->c;
    chunk_t ch = st->ring[st->head % CLIENT_SUBMIT_WINDOW];
    st->head++;
    st->inflight--;
    redisReply *r = NULL;
    const char *what = ch.count ? "enqueue" : "SADD";
    int rc = client_pipe_read(c, ch.node, &r);
    if (rc == CLIENT_EREDIRECT || (rc == 0 && is_noscript(r))) {
        if (r) freeReplyObject(r);
        st->resend[st->nresend++] = ch;
        return 0;
    }
    if (rc < 0) return rc;
    if (r->type == REDIS_REPLY_ERROR) return reply_error(c, c->nodes[ch.node].rc, r, what);
    if (!ch.count) {
        freeReplyObject(r);
        return 0;
    }
    return enqueue_reply(st, &ch, r);
}

/* Reads every pending reply. Returns the first error; after a broken
 * connection nothing more can be read (the next call reconnects). */
static int settle(submit_t *st)
{
    int first = 0;
    while (st->inflight) {
        int rc = read_head(st);
        if (rc < 0 && !first) first = rc;
        if (rc == JOBD_ECONN) break;
    }
    return first;
}

/* Sends the chunks that did not run again, one call each, once nothing is
 * in flight: client_script_run loads a missing script and follows MOVED and
 * ASK. Chunks of one batch can then land out of order; each is still applied
 * whole, exactly once (a refused call changed nothing). */
static int resend(submit_t *st)
{
    jobd_client_t *c = st->c;
    int rc = settle(st);
    if (rc < 0) return rc;
    for (size_t i = 0; i < st->nresend && rc == 0; i++) {
        chunk_t ch = st->resend[i];
        redisReply *r = NULL;
        if (!ch.count) {
            char key[KEYS_MAX];
            keys_global(key, c->prefix, "queues");
            if ((rc = client_command(c, key, &r, "SADD %s %s", key, st->specs[ch.first].queue)) ==
                0)
                freeReplyObject(r);
            continue;
        }
        proto_argv_t *a = &c->chunk[ch.slot];
        memcpy(a->buf + a->offs[1], c->sha[PROTO_ENQUEUE], 40);
        if ((rc = client_script_run(c, a, PROTO_ENQUEUE, &r)) == 0) rc = enqueue_reply(st, &ch, r);
    }
    st->nresend = 0;
    return rc;
}

/* Reads the head reply, answering a refused call there; on error it reads
 * the rest of the window too. */
static int step(submit_t *st)
{
    int rc = read_head(st);
    if (rc == 0 && st->nresend) rc = resend(st);
    if (rc < 0 && rc != JOBD_ECONN) settle(st);
    return rc;
}

static int spec_prio(const jobd_job_spec_t *s)
{
    return s->priority < 0 ? JOBD_DEFAULT_PRIORITY : s->priority;
}

static int spec_max(const jobd_job_spec_t *s)
{
    return s->max_attempts; /* 0: not set; the handler's or the default applies */
}

static int64_t spec_run_at(const jobd_job_spec_t *s, int64_t now)
{
    return s->run_at_ms ? s->run_at_ms : (s->delay_ms ? now + s->delay_ms : 0);
}

/* Builds the enqueue call for specs[first..first+count) in window slot. */
static int build_chunk(jobd_client_t *c, const jobd_job_spec_t *specs, size_t first, size_t count,
                       int slot, char *ids)
{
    char qp[KEYS_MAX], err[512];
    proto_argv_t *a = &c->chunk[slot];
    const jobd_job_spec_t *s0 = &specs[first];
    int64_t now = jobd_now_ms();
    /* Ids we make are fresh; only ids the caller chose are checked. Jobs
     * that differ only in id and envelope (the usual batch) send the rest
     * once: a third of the arguments for Redis to parse. */
    int check_ids = 0, uniform = 1;
    for (size_t i = first; i < first + count; i++) {
        const jobd_job_spec_t *s = &specs[i];
        check_ids |= s->id != NULL;
        uniform &= !s->idempotency_key && spec_prio(s) == spec_prio(s0) &&
                   spec_max(s) == spec_max(s0) && spec_run_at(s, now) == spec_run_at(s0, now);
    }
    keys_queue_prefix(qp, c->prefix, s0->queue);
    proto_argv_reset(a);
    proto_argv_script(a, c->sha[PROTO_ENQUEUE], qp);
    proto_argv_addll(a, JOBD_TTL_IDEMPOTENCY_S);
    proto_argv_addll(a, (long long)count);
    proto_argv_adds(a, check_ids ? "1" : "0");
    proto_argv_adds(a, uniform ? "2" : "6");
    if (uniform) {
        proto_argv_addll(a, spec_prio(s0));
        proto_argv_addll(a, spec_max(s0));
        proto_argv_addll(a, spec_run_at(s0, now));
    }
    for (size_t i = first; i < first + count; i++) {
        const jobd_job_spec_t *s = &specs[i];
        char *id = ids + i * (JOBD_ID_LEN + 1);
        if (s->id)
            snprintf(id, JOBD_ID_LEN + 1, "%s", s->id);
        else
            jobd_id_new(id);
        /* Checked by client_submit before anything was sent. */
        int rc = envelope_encode_buf(s, id, now, c->payload_max, 1, &c->env, err, sizeof err);
        if (rc < 0) return client_err(c, rc, "job %zu: %s", i + 1, err);
        proto_argv_adds(a, id);
        proto_argv_add(a, c->env.buf, c->env.len);
        if (!uniform) {
            proto_argv_addll(a, spec_prio(s));
            proto_argv_addll(a, spec_max(s));
            proto_argv_addll(a, spec_run_at(s, now));
            proto_argv_adds(a, s->idempotency_key);
        }
    }
    return 0;
}

int jobd_submit(jobd_client_t *c, const jobd_job_spec_t *spec, char *id_out, int *created)
{
    return client_submit(c, spec, 1, id_out, created);
}

int jobd_submit_batch(jobd_client_t *c, const jobd_job_spec_t *specs, size_t n, char *ids_out)
{
    return client_submit(c, specs, n, ids_out, NULL);
}

int client_submit(jobd_client_t *c, const jobd_job_spec_t *specs, size_t n, char *ids_out,
                  int *created)
{
    char err[512];
    /* Check everything first: a bad job fails the batch with nothing sent. */
    for (size_t i = 0; i < n; i++) {
        int rc = jobd_job_spec_check(&specs[i], c->payload_max, err, sizeof err);
        if (rc < 0)
            return n == 1 ? client_err(c, rc, "%s", err)
                          : client_err(c, rc, "job %zu: %s", i + 1, err);
    }
    int rc = 0;
    submit_t st = {.c = c, .specs = specs, .ids = ids_out, .created = created};
    const char *last_queue = NULL;
    size_t i = 0;
    while (i < n) {
        if (st.inflight == CLIENT_SUBMIT_WINDOW) {
            if ((rc = step(&st)) < 0) return rc;
            continue;
        }
        int slot = (int)((st.head + st.inflight) % CLIENT_SUBMIT_WINDOW);
        if (!last_queue || strcmp(last_queue, specs[i].queue) != 0) {
            /* Queue registration is idempotent and outside the script: the
             * queue set is a global key, in no queue's hash slot. */
            char key[KEYS_MAX];
            keys_global(key, c->prefix, "queues");
            int node = client_pipe_appendf(c, key, "SADD %s %s", key, specs[i].queue);
            if ((rc = node) < 0) break;
            last_queue = specs[i].queue;
            push(&st, (chunk_t){.first = i, .slot = slot, .node = node});
            continue;
        }
        size_t count = 1;
        while (i + count < n && count < JOBD_BATCH_CHUNK &&
               strcmp(specs[i + count].queue, last_queue) == 0)
            count++;
        if ((rc = build_chunk(c, specs, i, count, slot, ids_out)) < 0) break;
        proto_argv_t *a = &c->chunk[slot];
        size_t len;
        const char *cmd = proto_argv_resp(a, &len);
        if (!cmd) {
            rc = client_err(c, JOBD_ENOMEM, "out of memory building a command");
            break;
        }
        int node = client_pipe_append(c, a->buf + a->offs[3], cmd, len);
        if ((rc = node) < 0) break;
        /* Written now, not at the next read, so Redis starts on it while we
         * encode the next chunk. */
        if ((rc = client_pipe_flush(c)) < 0) break;
        push(&st, (chunk_t){.first = i, .count = count, .slot = slot, .node = node});
        i += count;
    }
    if (rc < 0) {
        /* Every appended command has its place in the window, and reading
         * writes what is still buffered: settling leaves nothing behind. A
         * broken connection is replaced by the next call instead. */
        if (rc != JOBD_ECONN) settle(&st);
        return rc;
    }
    while (st.inflight)
        if ((rc = step(&st)) < 0) return rc;
    return 0;
}
