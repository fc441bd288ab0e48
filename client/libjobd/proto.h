/* proto.h - the wire side of the queue protocol, transport-agnostic.
 *
 * DESIGN: both transports (the blocking client here and jobd's asynchronous
 * rq module) build script calls with proto_argv_t and read replies with the
 * parsers in envelope.h, so the two never disagree on argument order. An
 * argv keeps every argument in one growing arena: a 100,000-job batch costs a
 * handful of reallocations, not one malloc per argument. */
#ifndef JOBD_PROTO_H
#define JOBD_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* The Redis scripts, listed once: X(ID, file name) per line. CMakeLists.txt
 * reads the X( lines of this list to embed schema/redis/NAME.lua in this
 * order, so the enum below and the embedded table cannot drift apart. */
/* clang-format off */
#define PROTO_SCRIPTS(X)                                                   \
    X(ENQUEUE, enqueue)                                                    \
    X(CLAIM, claim)                                                        \
    X(EXTEND, extend)                                                      \
    X(ACK, ack)                                                            \
    X(FAIL, fail)                                                          \
    X(RELEASE, release)                                                    \
    X(CHECKPOINT, checkpoint)                                              \
    X(REAP, reap)                                                          \
    X(CANCEL, cancel)                                                      \
    X(RETRY, retry)                                                        \
    X(WATCH, watch)                                                        \
    X(STATS, stats)                                                        \
    X(ACQUIRE, acquire) /* cluster-wide resources (jobd only) */           \
    X(UNACQUIRE, unacquire)                                                \
    X(DEFER, defer) /* scheduling: waits outside the slots, rolling deploys */ \
    X(TICK, tick)   /* cron schedules */                                   \
    X(BATCH, batch) /* named batches: jobs, then completion */             \
    X(COMPLETE, complete)                                                  \
    X(PAUSE, pause) /* the console's queue controls */                     \
    X(PURGE, purge)                                                        \
    X(DELETE, delete)                                                      \
    X(PEEK, peek)
/* clang-format on */

typedef enum {
#define PROTO_SCRIPT_ID(id, name) PROTO_##id,
    PROTO_SCRIPTS(PROTO_SCRIPT_ID)
#undef PROTO_SCRIPT_ID
        PROTO_NSCRIPTS
} proto_script_t;

/* Returns the embedded text of a script (lib.lua prepended). */
const char *proto_script_text(proto_script_t s, size_t *len);
const char *proto_script_name(proto_script_t s);

typedef struct {
    char *buf; /* arena holding every argument back to back */
    size_t len, cap;
    size_t *offs, *lens; /* per argument */
    int argc, acap;
    const char **argv; /* built by proto_argv_finish */
    char *resp;        /* built by proto_argv_resp */
    size_t resp_cap;
    int oom; /* set when an allocation failed; finish returns NULL */
} proto_argv_t;

void proto_argv_init(proto_argv_t *a);
/* Empties a for reuse, keeping its memory. */
void proto_argv_reset(proto_argv_t *a);
void proto_argv_free(proto_argv_t *a);
void proto_argv_add(proto_argv_t *a, const char *s, size_t len);
void proto_argv_adds(proto_argv_t *a, const char *s); /* NULL adds "" */
void proto_argv_addll(proto_argv_t *a, long long v);
void proto_argv_addd(proto_argv_t *a, double v);
/* Starts a script call: EVALSHA sha 1 queue_prefix. */
void proto_argv_script(proto_argv_t *a, const char *sha, const char *queue_prefix);
/* Returns the argv array (valid until the next add/reset/free) and sets
 * *lens, or NULL if an allocation failed. */
const char **proto_argv_finish(proto_argv_t *a, const size_t **lens);
/* Returns the command in the Redis protocol (RESP), ready for hiredis'
 * redisAppendFormattedCommand / redisAsyncFormattedCommand, and sets *len;
 * NULL if an allocation failed. Valid until the next add/reset/free. Cheaper
 * than letting hiredis format an argv: one pass, no printf. */
const char *proto_argv_resp(proto_argv_t *a, size_t *len);

#endif
