/* redis_fail.c - see redis_fail.h. */
#define _GNU_SOURCE
#include <string.h>

#include "redis_fail.h"

redis_fail_t redis_fail_of_connect(const char *errstr)
{
    if (!errstr) return REDIS_FAIL_UNREACHABLE;
    /* hiredis reports connect errors as strerror(3) text. */
    if (strcasestr(errstr, "refused")) return REDIS_FAIL_REFUSED;
    if (strcasestr(errstr, "timed out") || strcasestr(errstr, "timeout")) return REDIS_FAIL_TIMEOUT;
    return REDIS_FAIL_UNREACHABLE;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

redis_fail_t redis_fail_of_reply(const char *reply)
{
    if (!reply || !*reply) return REDIS_FAIL_OTHER;
    if (starts_with(reply, "LOADING")) return REDIS_FAIL_LOADING;
    if (starts_with(reply, "NOAUTH") || starts_with(reply, "WRONGPASS")) return REDIS_FAIL_AUTH;
    if (starts_with(reply, "NOPERM")) return REDIS_FAIL_NOPERM;
    /* Older servers and odd set-ups answer AUTH with plain ERR: "ERR invalid
     * password", "ERR Client sent AUTH, but no password is set", "ERR AUTH
     * <password> called without any password configured for the default
     * user", "ERR wrong number of arguments for 'auth' command" (a Redis
     * before 6 given a user name). */
    if (starts_with(reply, "ERR") && (strcasestr(reply, "auth") || strcasestr(reply, "password")))
        return REDIS_FAIL_AUTH;
    return REDIS_FAIL_OTHER;
}

int redis_fail_is_unavailable(redis_fail_t k)
{
    return k == REDIS_FAIL_REFUSED || k == REDIS_FAIL_TIMEOUT || k == REDIS_FAIL_UNREACHABLE ||
           k == REDIS_FAIL_AUTH || k == REDIS_FAIL_NOPERM || k == REDIS_FAIL_LOADING ||
           k == REDIS_FAIL_LOST;
}

const char *redis_fail_phrase(redis_fail_t k)
{
    switch (k) {
    case REDIS_FAIL_NONE:
        return "connecting";
    case REDIS_FAIL_REFUSED:
        return "connection refused";
    case REDIS_FAIL_TIMEOUT:
        return "timed out";
    case REDIS_FAIL_UNREACHABLE:
        return "unreachable";
    case REDIS_FAIL_AUTH:
        return "auth failed";
    case REDIS_FAIL_NOPERM:
        return "permission denied";
    case REDIS_FAIL_LOADING:
        return "Redis is loading its data set";
    case REDIS_FAIL_LOST:
        return "connection lost";
    case REDIS_FAIL_OTHER:
        break;
    }
    return "error reply";
}
