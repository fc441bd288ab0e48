/* admin.h - who may use the console's write actions: the bearer token read
 * from the file named by JOBD_ADMIN_TOKEN_FILE.
 *
 * DESIGN: no file configured (or unreadable, or a token shorter than 16
 * bytes): the console is read-only and every write action gets 403 saying
 * so. With a token, a request must carry "Authorization: Bearer TOKEN"; the
 * comparison is of the two SHA-256 digests in constant time, so neither the
 * token's length nor a matching prefix shows in the timing. The file is read
 * again at each write action (at most once a second), so a token is rotated
 * without a restart. A token is named in logs only by its id, the first 8
 * hex digits of its SHA-256; the token itself is never logged or kept
 * beyond its digest. No cookies are set or read: a browser never sends the
 * token by itself, so there is no cross-site request forgery to guard
 * against. Loop thread only. */
#ifndef JOBD_ADMIN_H
#define JOBD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#define ADMIN_TOKEN_MIN 16 /* bytes; shorter tokens are refused (read-only) */

typedef enum {
    ADMIN_OK = 0,    /* authorised; id names the token */
    ADMIN_READ_ONLY, /* no usable token configured: 403 */
    ADMIN_NO_TOKEN,  /* no bearer token in the request: 401 */
    ADMIN_BAD_TOKEN  /* a bearer token that does not match: 401 */
} admin_verdict_t;

typedef struct {
    char path[1024];    /* JOBD_ADMIN_TOKEN_FILE, "" if unset */
    int have;           /* a usable token was read */
    uint8_t digest[32]; /* SHA-256 of the token */
    char id[9];         /* its first 8 hex digits */
    char why[1400];     /* why there is none (for the 403 and the log) */
    int64_t read_ms;    /* when the file was last read (monotonic ms) */
} admin_t;

/* Reads JOBD_ADMIN_TOKEN_FILE (if set) and logs what the console allows.
 * Never fails: without a token the console is read-only. */
void admin_init(admin_t *a);
/* Checks an Authorization header value ("" if none) against the token;
 * the token id goes to id_out (9 bytes) when ADMIN_OK, or the presented
 * token's id when ADMIN_BAD_TOKEN ("" if none), for the log. */
admin_verdict_t admin_check(admin_t *a, const char *authorization, char *id_out);
/* Why the console is read-only (valid while a lives). */
const char *admin_why(const admin_t *a);

/* SHA-256 of len bytes (FIPS 180-4). Pure. */
void admin_sha256(const void *data, size_t len, uint8_t out[32]);
/* Whether the 32-byte digests a and b are equal, in time independent of
 * their contents. Pure. */
int admin_digest_eq(const uint8_t a[32], const uint8_t b[32]);

#endif
