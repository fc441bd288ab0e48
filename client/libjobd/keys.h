/* keys.h - the Redis key layout (schema/redis/README.md), defined once.
 *
 * Every key of a queue is "PREFIX:{QUEUE}:<suffix>"; the braces make QUEUE the
 * Redis Cluster hash tag. Scripts get the queue prefix as KEYS[1] and build
 * the rest themselves. Global keys (not per queue) are PREFIX:schema,
 * PREFIX:queues and the worker registry. */
#ifndef JOBD_KEYS_H
#define JOBD_KEYS_H

#include <stddef.h>

#define KEYS_MAX 512

/* Writes "PREFIX:{QUEUE}:" into out (KEYS_MAX bytes). Returns its length. */
size_t keys_queue_prefix(char *out, const char *prefix, const char *queue);
/* Writes "PREFIX:{QUEUE}:SUFFIX" (e.g. "job:ID", "ready", "wake"). */
size_t keys_queue_key(char *out, const char *prefix, const char *queue, const char *suffix);
/* Writes "PREFIX:NAME" for global keys: "schema", "queues", "workers",
 * "worker:ID". */
size_t keys_global(char *out, const char *prefix, const char *name);

/* The ready/state set suffixes by jobd_state_t ("ready" for queued). */
const char *keys_state_set(int state);

#endif
