/* keys.c - see keys.h. */
#include <stdio.h>

#include "jobd/client.h"
#include "keys.h"

static size_t fit(int n)
{
    return n < 0 ? 0 : (n >= KEYS_MAX ? KEYS_MAX - 1 : (size_t)n);
}

size_t keys_queue_prefix(char *out, const char *prefix, const char *queue)
{
    return fit(snprintf(out, KEYS_MAX, "%s:{%s}:", prefix, queue));
}

size_t keys_queue_key(char *out, const char *prefix, const char *queue, const char *suffix)
{
    return fit(snprintf(out, KEYS_MAX, "%s:{%s}:%s", prefix, queue, suffix));
}

size_t keys_global(char *out, const char *prefix, const char *name)
{
    return fit(snprintf(out, KEYS_MAX, "%s:%s", prefix, name));
}

const char *keys_state_set(int state)
{
    static const char *const sets[JOBD_NSTATES] = {
        "ready", "scheduled", "active", "succeeded", "dead", "canceled",
    };
    return (state >= 0 && state < JOBD_NSTATES) ? sets[state] : NULL;
}
