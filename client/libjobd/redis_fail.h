/* redis_fail.h - why talking to Redis failed, in words an operator can act
 * on. Shared by libjobd (jobctl's exit status) and jobd (reconnect backoff,
 * its log lines and /health/ready's reasons).
 *
 * Classifies a failed connect (hiredis's errstr) or an error reply (its
 * text, without the leading '-') into a kind. Pure: no I/O, no state. */
#ifndef JOBD_REDIS_FAIL_H
#define JOBD_REDIS_FAIL_H

typedef enum {
    REDIS_FAIL_NONE = 0,    /* no failure (yet) */
    REDIS_FAIL_REFUSED,     /* nothing listens there: connection refused */
    REDIS_FAIL_TIMEOUT,     /* connecting or the handshake took too long */
    REDIS_FAIL_UNREACHABLE, /* another connect error (no socket file, DNS, ...) */
    REDIS_FAIL_AUTH,        /* credentials refused: NOAUTH, WRONGPASS, ERR ... AUTH */
    REDIS_FAIL_NOPERM,      /* the ACL user may not run a command jobd needs */
    REDIS_FAIL_LOADING,     /* Redis is loading its data set into memory */
    REDIS_FAIL_LOST,        /* an established connection was closed */
    REDIS_FAIL_OTHER        /* any other error reply */
} redis_fail_t;

/* The kind of a failed connect, from hiredis's errstr (NULL: unreachable). */
redis_fail_t redis_fail_of_connect(const char *errstr);
/* The kind of an error reply's text (NULL or "": REDIS_FAIL_OTHER). */
redis_fail_t redis_fail_of_reply(const char *reply);
/* Whether a reply of this kind means "Redis cannot be used now or refused
 * the credentials" (jobctl: exit 69) rather than "the command failed". */
int redis_fail_is_unavailable(redis_fail_t k);
/* A short lower-case phrase: "connection refused", "auth failed",
 * "Redis is loading its data set", ... (static). */
const char *redis_fail_phrase(redis_fail_t k);

#endif
