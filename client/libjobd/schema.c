/* schema.c - see schema.h. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "jobd/version.h"
#include "schema.h"

void schema_cmd(schema_cmd_t *cmd, const char *prefix, schema_key_t k, int get)
{
    if (k == SCHEMA_LEGACY)
        keys_legacy(cmd->key, prefix, "schema");
    else
        keys_global(cmd->key, prefix, "schema");
    snprintf(cmd->version, sizeof cmd->version, "%d", JOBD_REDIS_SCHEMA);
    cmd->argv[0] = get ? "GET" : "SET";
    cmd->argv[1] = cmd->key;
    cmd->argc = 2;
    if (!get) {
        cmd->argv[2] = cmd->version;
        cmd->argv[3] = "NX";
        cmd->argc = 4;
    }
    for (int i = 0; i < cmd->argc; i++)
        cmd->lens[i] = strlen(cmd->argv[i]);
}

int schema_verdict(const char *prefix, schema_key_t k, const char *set_error, int get_type,
                   const char *get_str, const char **said, char *err, size_t errlen)
{
    char key[KEYS_MAX];
    if (k == SCHEMA_LEGACY)
        keys_legacy(key, prefix, "schema");
    else
        keys_global(key, prefix, "schema");
    if (said) *said = NULL;
    if (get_type < 0) {
        snprintf(err, errlen, "connection lost during the layout check");
        return JOBD_ECONN;
    }
    if (get_type == REDIS_REPLY_ERROR) {
        if (said) *said = get_str;
        snprintf(err, errlen, "layout check (GET %s): %s", key, get_str);
        return JOBD_EREDIS;
    }
    if (get_type == REDIS_REPLY_NIL) {
        /* Nothing there: our SET was refused (NOPERM: a read-only user on a
         * Redis no writer claimed yet), or the key was deleted between the
         * two commands. */
        if (said) *said = set_error;
        snprintf(err, errlen, "layout check: %s is not set%s%s", key, set_error ? ": " : "",
                 set_error ? set_error : " (deleted during the check)");
        return JOBD_EREDIS;
    }
    if (get_type != REDIS_REPLY_STRING) {
        snprintf(err, errlen, "layout check: unexpected reply to GET %s (type %d)", key, get_type);
        return JOBD_EREDIS;
    }
    char want[16];
    snprintf(want, sizeof want, "%d", JOBD_REDIS_SCHEMA);
    /* Anything but our exact version is another layout ("2x" included). */
    if (strcmp(get_str, want) == 0) return 0;
    char *end;
    long found = strtol(get_str, &end, 10);
    int older = end != get_str && *end == '\0' && found >= 1 && found < JOBD_REDIS_SCHEMA;
    snprintf(err, errlen,
             "Redis key %s holds jobd layout version %.32s, but this build speaks version %d; "
             "refusing to touch it (%s)",
             key, get_str, JOBD_REDIS_SCHEMA,
             older ? "an older layout: stop every jobd, run `jobctl migrate` with this build, "
                     "then start the new version (schema/redis/README.md)"
                   : "use another prefix, or upgrade to a build that speaks it");
    return JOBD_ESCHEMA;
}
