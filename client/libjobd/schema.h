/* schema.h - the layout version check, one implementation for jobd (which
 * runs it on its asynchronous connection) and libjobd (blocking).
 *
 * DESIGN: two keys hold the version: PREFIX:{:global}:schema, and layout 1's
 * PREFIX:schema, which every later client sets too, so that a layout 1
 * binary finds another version there and refuses this Redis instead of
 * writing layout 1 keys beside ours. Each key is checked with two plain
 * commands, SET key V NX then GET key, sent back to back: unlike SET ... NX
 * GET they need no Redis 7, and a user who may not write (an autoscaler's
 * read-only ACL user) still passes when GET shows our version. Transports
 * build the commands with schema_cmd, route each to the node of its key (the
 * two keys may sit on different cluster nodes) and judge the replies with
 * schema_verdict. Pure: no I/O. */
#ifndef JOBD_SCHEMA_H
#define JOBD_SCHEMA_H

#include <stddef.h>

#include "keys.h"

typedef enum {
    SCHEMA_CURRENT = 0, /* PREFIX:{:global}:schema */
    SCHEMA_LEGACY,      /* PREFIX:schema, layout 1's place */
    SCHEMA_NKEYS
} schema_key_t;

typedef struct {
    char key[KEYS_MAX];
    char version[16];
    int argc;
    const char *argv[5]; /* point into key and version */
    size_t lens[5];
} schema_cmd_t;

/* Fills cmd with key k's SET key V NX (get 0) or GET key (get 1). */
void schema_cmd(schema_cmd_t *cmd, const char *prefix, schema_key_t k, int get);

/* Judges key k: set_error is the text of the SET's error reply (NULL: it
 * succeeded or was not sent), get_type/get_str the GET's reply type
 * (REDIS_REPLY_*; -1: no reply, the connection was lost) and text. Returns 0
 * (our version), JOBD_ESCHEMA (another layout: fatal; err says what to do:
 * run `jobctl migrate`, or upgrade), JOBD_ECONN (no reply) or JOBD_EREDIS
 * (an error reply; *said, if said is not NULL, is its text, borrowed from
 * the arguments, for the caller to classify: NOAUTH, NOPERM, LOADING). */
int schema_verdict(const char *prefix, schema_key_t k, const char *set_error, int get_type,
                   const char *get_str, const char **said, char *err, size_t errlen);

#endif
