/* keys.h - the Redis key layout (schema/redis/README.md), defined once.
 *
 * Every key of a queue is "PREFIX:{QUEUE}:<suffix>"; the braces make QUEUE the
 * Redis Cluster hash tag. Scripts get the queue prefix as KEYS[1] and build
 * the rest themselves. Global keys (not per queue: the schema version, the
 * queue registry, the worker registry) share one hash tag of their own,
 * KEYS_GLOBAL_TAG, which no queue name can spell (queue names hold no ':'),
 * so on a cluster they live together in one slot, apart from every queue.
 * Layout 1 kept them untagged ("PREFIX:NAME"); keys_legacy names those for
 * the layout check and `jobctl migrate`. */
#ifndef JOBD_KEYS_H
#define JOBD_KEYS_H

#include <stddef.h>

#define KEYS_MAX 512
/* The hash tag of the global keys (layout 2 on). */
#define KEYS_GLOBAL_TAG "{:global}"
/* Longest prefix accepted: every key must fit in KEYS_MAX. */
#define KEYS_PREFIX_MAX 100

/* Writes "PREFIX:{QUEUE}:" into out (KEYS_MAX bytes). Returns its length. */
size_t keys_queue_prefix(char *out, const char *prefix, const char *queue);
/* Writes "PREFIX:{QUEUE}:SUFFIX" (e.g. "job:ID", "ready", "wake"). */
size_t keys_queue_key(char *out, const char *prefix, const char *queue, const char *suffix);
/* Writes "PREFIX:{:global}:NAME" for global keys: "schema", "queues",
 * "workers", "worker:ID". */
size_t keys_global(char *out, const char *prefix, const char *name);
/* Writes layout 1's "PREFIX:NAME" for a global key (migration only). */
size_t keys_legacy(char *out, const char *prefix, const char *name);

/* Checks a key prefix: 1..KEYS_PREFIX_MAX characters, no '{' or '}' (a brace
 * would make part of the prefix the hash tag of every key, so queues could
 * not be spread over a cluster's nodes), no control characters or spaces.
 * Returns 0, or JOBD_EINVAL with a message in err. Both jobd and jobctl
 * call it, so the two accept the same prefixes. */
int keys_prefix_check(const char *prefix, char *err, size_t errlen);

/* The ready/state set suffixes by jobd_state_t ("ready" for queued). */
const char *keys_state_set(int state);

#endif
