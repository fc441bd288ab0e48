/* client.c - the blocking libjobd client (see include/jobd/client.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jobd/version.h"
#include "envelope.h"
#include "keys.h"
#include "proto.h"

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
    if (!r) {
        char where[600];
        redis_url_describe(&c->url, where, sizeof where);
        return client_err(c, JOBD_ECONN, "Redis at %s: %s failed: %s", where, what,
                          rc->errstr[0] ? rc->errstr : "connection lost");
    }
    int code = client_err(c, JOBD_EREDIS, "Redis: %s: %.*s", what, (int)r->len, r->str);
    freeReplyObject(r);
    return code;
}

int client_connect(jobd_client_t *c, redisContext **out)
{
    struct timeval tv = {c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000};
    redisContext *rc = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, tv)
                                      : redisConnectWithTimeout(c->url.host, c->url.port, tv);
    char where[600];
    redis_url_describe(&c->url, where, sizeof where);
    if (!rc) return client_err(c, JOBD_ENOMEM, "cannot allocate a Redis context");
    if (rc->err) {
        int code = client_err(c, JOBD_ECONN, "Redis unreachable at %s: %s", where, rc->errstr);
        redisFree(rc);
        return code;
    }
    redisSetTimeout(rc, tv);
    redisReply *r;
    if (c->url.password[0]) {
        r = c->url.user[0] ? redisCommand(rc, "AUTH %s %s", c->url.user, c->url.password)
                           : redisCommand(rc, "AUTH %s", c->url.password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            int code = reply_error(c, rc, r, "AUTH");
            if (code == JOBD_EREDIS) code = JOBD_ECONN;
            redisFree(rc);
            return code;
        }
        freeReplyObject(r);
    }
    if (c->url.db) {
        r = redisCommand(rc, "SELECT %d", c->url.db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            int code = reply_error(c, rc, r, "SELECT");
            redisFree(rc);
            return code;
        }
        freeReplyObject(r);
    }
    *out = rc;
    return 0;
}

/* Reads PREFIX:schema, claiming an empty Redis for this layout version. */
static int check_schema(jobd_client_t *c)
{
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "schema");
    redisReply *r = redisCommand(c->rc, "SET %s %d NX GET", key, JOBD_REDIS_SCHEMA);
    if (!r || r->type == REDIS_REPLY_ERROR) return reply_error(c, c->rc, r, "schema check");
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING && atoi(r->str) != JOBD_REDIS_SCHEMA)
        rc = client_err(c, JOBD_ESCHEMA,
                        "Redis key %s holds jobd layout version %s, but this build speaks "
                        "version %d; refusing to touch it (use another --prefix or upgrade)",
                        key, r->str, JOBD_REDIS_SCHEMA);
    freeReplyObject(r);
    return rc;
}

static int load_script(jobd_client_t *c, proto_script_t s)
{
    size_t len;
    const char *text = proto_script_text(s, &len);
    redisReply *r = redisCommand(c->rc, "SCRIPT LOAD %b", text, len);
    if (!r || r->type != REDIS_REPLY_STRING) return reply_error(c, c->rc, r, "SCRIPT LOAD");
    snprintf(c->sha[s], sizeof c->sha[s], "%s", r->str);
    freeReplyObject(r);
    return 0;
}

int jobd_client_new(const jobd_client_opts_t *opts, jobd_client_t **out, char *errbuf,
                    size_t errlen)
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
    if (!c) return JOBD_ENOMEM;
    int rc = redis_url_parse(o.url, &c->url, errbuf, errlen);
    const char *pwfile = o.password_file ? o.password_file : getenv("JOBD_REDIS_PASSWORD_FILE");
    if (rc == 0) rc = redis_url_password_file(&c->url, pwfile, errbuf, errlen);
    if (rc < 0) goto fail;
    snprintf(c->prefix, sizeof c->prefix, "%s", o.prefix ? o.prefix : "jobd");
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 5000;
    c->payload_max = o.payload_max ? o.payload_max : JOBD_PAYLOAD_MAX;
    proto_argv_init(&c->argv);
    if ((rc = client_connect(c, &c->rc)) < 0) goto fail_msg;
    if ((rc = check_schema(c)) < 0) goto fail_msg;
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

void jobd_client_free(jobd_client_t *c)
{
    if (!c) return;
    if (c->rc) redisFree(c->rc);
    proto_argv_free(&c->argv);
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

int client_script_send(jobd_client_t *c)
{
    const size_t *lens;
    const char **argv = proto_argv_finish(&c->argv, &lens);
    if (!argv) return client_err(c, JOBD_ENOMEM, "out of memory building a command");
    if (redisAppendCommandArgv(c->rc, c->argv.argc, argv, lens) != REDIS_OK)
        return client_err(c, JOBD_ECONN, "Redis: %s", c->rc->errstr);
    return 0;
}

int client_script_reply(jobd_client_t *c, proto_script_t s, redisReply **out, int can_retry)
{
    redisReply *r = NULL;
    if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) r = NULL;
    if (can_retry && is_noscript(r)) {
        /* Redis restarted or failed over and lost its script cache: load the
         * script again and retry once. A SHA1 is always 40 characters, so
         * the new one overwrites argv[1] in place. */
        freeReplyObject(r);
        int rc = load_script(c, s);
        if (rc < 0) return rc;
        memcpy(c->argv.buf + c->argv.offs[1], c->sha[s], 40);
        if ((rc = client_script_send(c)) < 0) return rc;
        if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) r = NULL;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) return reply_error(c, c->rc, r, proto_script_name(s));
    *out = r;
    return 0;
}

int client_script_call(jobd_client_t *c, redisReply **out)
{
    int rc = client_script_send(c);
    if (rc < 0) return rc;
    return client_script_reply(c, c->argv_script, out, 1);
}

int client_command(jobd_client_t *c, redisReply **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c->rc, fmt, ap);
    va_end(ap);
    if (!r || r->type == REDIS_REPLY_ERROR) return reply_error(c, c->rc, r, "command");
    *out = r;
    return 0;
}

/* ---- submitting ---- */

static int register_queue(jobd_client_t *c, const char *queue)
{
    char key[KEYS_MAX];
    keys_global(key, c->prefix, "queues");
    return redisAppendCommand(c->rc, "SADD %s %s", key, queue) == REDIS_OK
               ? 0
               : client_err(c, JOBD_ECONN, "Redis: %s", c->rc->errstr);
}

static void add_job_args(jobd_client_t *c, const jobd_job_spec_t *s, const char *id,
                         const char *env, size_t envlen, int64_t now)
{
    proto_argv_t *a = &c->argv;
    proto_argv_adds(a, id);
    proto_argv_add(a, env, envlen);
    proto_argv_addll(a, s->priority < 0 ? JOBD_DEFAULT_PRIORITY : s->priority);
    proto_argv_addll(a, s->max_attempts ? s->max_attempts : JOBD_DEFAULT_MAX_ATTEMPTS);
    proto_argv_addll(a, s->run_at_ms ? s->run_at_ms : (s->delay_ms ? now + s->delay_ms : 0));
    proto_argv_adds(a, s->idempotency_key);
}

/* Reads one enqueue reply into ids[first..first+count). */
static int enqueue_reply(jobd_client_t *c, char *ids, size_t first, size_t count, int *created)
{
    redisReply *r;
    /* Pipelined: c->argv may hold a later chunk, so no in-place retry. A
     * NOSCRIPT here means the script cache was flushed mid-batch. */
    int rc = client_script_reply(c, PROTO_ENQUEUE, &r, 0);
    if (rc < 0) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != count * 2) {
        freeReplyObject(r);
        return client_err(c, JOBD_EREDIS, "unexpected reply from enqueue");
    }
    for (size_t i = 0; i < count; i++) {
        redisReply *id = r->element[2 * i];
        char *dst = ids + (first + i) * (JOBD_ID_LEN + 1);
        snprintf(dst, JOBD_ID_LEN + 1, "%.*s", (int)id->len, id->str);
        if (created) *created = (int)r->element[2 * i + 1]->integer;
    }
    freeReplyObject(r);
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

/* Pipelines the jobs in chunks of consecutive same-queue jobs, with at most
 * WINDOW chunks unanswered so Redis works while we encode the next ones. */
#define WINDOW 8
typedef struct {
    size_t first, count; /* count 0: the reply of a queue registration */
} chunk_t;

static int read_chunk(jobd_client_t *c, const chunk_t *ch, char *ids, int *created)
{
    if (ch->count)
        return enqueue_reply(c, ids, ch->first, ch->count, created);
    redisReply *r;
    if (redisGetReply(c->rc, (void **)&r) != REDIS_OK) return reply_error(c, c->rc, NULL, "SADD");
    freeReplyObject(r);
    return 0;
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
    chunk_t pending[WINDOW];
    size_t head = 0, inflight = 0;
    int rc = 0;
    const char *last_queue = NULL;
    size_t i = 0;
    while (i < n) {
        if (inflight == WINDOW) {
            if ((rc = read_chunk(c, &pending[head % WINDOW], ids_out, created)) < 0) return rc;
            head++;
            inflight--;
            continue;
        }
        /* Queue registration is idempotent and outside the script: the
         * queue set is a global key, in no queue's hash slot. */
        if (!last_queue || strcmp(last_queue, specs[i].queue) != 0) {
            if ((rc = register_queue(c, specs[i].queue)) < 0) return rc;
            last_queue = specs[i].queue;
            pending[(head + inflight) % WINDOW] = (chunk_t){0, 0};
            inflight++;
            continue;
        }
        size_t first = i;
        int64_t now = jobd_now_ms();
        client_script_begin(c, PROTO_ENQUEUE, specs[i].queue);
        proto_argv_addll(&c->argv, JOBD_TTL_IDEMPOTENCY_S);
        size_t count_pos = (size_t)c->argv.argc;
        proto_argv_adds(&c->argv, "0000000000"); /* N, patched below */
        size_t count = 0;
        while (i < n && count < JOBD_BATCH_CHUNK && strcmp(specs[i].queue, last_queue) == 0) {
            char id[JOBD_ID_LEN + 1];
            if (specs[i].id)
                snprintf(id, sizeof id, "%s", specs[i].id);
            else
                jobd_id_new(id);
            char *env;
            size_t envlen;
            rc = envelope_encode(&specs[i], id, now, c->payload_max, &env, &envlen, err,
                                 sizeof err);
            if (rc < 0) return client_err(c, rc, "job %zu: %s", i + 1, err);
            add_job_args(c, &specs[i], id, env, envlen, now);
            free(env);
            count++;
            i++;
        }
        char num[16];
        int nl = snprintf(num, sizeof num, "%zu", count);
        memcpy(c->argv.buf + c->argv.offs[count_pos], num, (size_t)nl + 1);
        c->argv.lens[count_pos] = (size_t)nl;
        if ((rc = client_script_send(c)) < 0) return rc;
        pending[(head + inflight) % WINDOW].first = first;
        pending[(head + inflight) % WINDOW].count = count;
        inflight++;
    }
    while (inflight) {
        if ((rc = read_chunk(c, &pending[head % WINDOW], ids_out, created)) < 0) return rc;
        head++;
        inflight--;
    }
    return 0;
}
