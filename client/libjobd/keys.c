/* keys.c - see keys.h. */
#include <stdio.h>
#include <string.h>

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
    return fit(snprintf(out, KEYS_MAX, "%s:" KEYS_GLOBAL_TAG ":%s", prefix, name));
}

size_t keys_legacy(char *out, const char *prefix, const char *name)
{
    return fit(snprintf(out, KEYS_MAX, "%s:%s", prefix, name));
}

int keys_prefix_check(const char *prefix, char *err, size_t errlen)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > KEYS_PREFIX_MAX) {
        snprintf(err, errlen, "prefix: must be 1 to %d characters", KEYS_PREFIX_MAX);
        return JOBD_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)prefix[i];
        if (ch == '{' || ch == '}') {
            snprintf(err, errlen,
                     "prefix: must hold no braces (jobd sets the Redis Cluster hash tags itself: "
                     "one per queue, one for the global keys)");
            return JOBD_EINVAL;
        }
        if (ch <= ' ' || ch == 0x7f) {
            snprintf(err, errlen, "prefix: must hold no spaces or control characters");
            return JOBD_EINVAL;
        }
    }
    return 0;
}

const char *keys_state_set(int state)
{
    static const char *const sets[JOBD_NSTATES] = {
        "ready", "scheduled", "active", "succeeded", "dead", "canceled",
    };
    return (state >= 0 && state < JOBD_NSTATES) ? sets[state] : NULL;
}
