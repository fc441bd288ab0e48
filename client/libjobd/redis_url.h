/* redis_url.h - Redis connection URLs, shared by libjobd and jobd.
 *
 *   redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]
 *   unix://[USER[:PASSWORD]@]/path/to.sock[?db=N]
 *   redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...]
 *       a Redis Cluster, reached through any of the nodes listed (seeds)
 *   redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]
 *       the primary that the Sentinels listed (port 26379 by default) name
 *       MASTER; the credentials are the primary's (Sentinels are asked
 *       without AUTH)
 *   rediss://...
 *       TLS. Parsed (u->tls) so that a build with a TLS-capable hiredis can
 *       switch it on; this build has none (hiredis 0.14) and refuses it
 *       with "not built with TLS" (deploy/redis/README.md: a stunnel
 *       sidecar instead)
 *
 * USER is a Redis ACL user (empty or absent: the default user); ":PASSWORD@"
 * alone is the default user's password. A password in the URL wins;
 * otherwise the password file (JOBD_REDIS_PASSWORD_FILE: its first line,
 * trailing newline dropped) supplies the password of the URL's user. User
 * and password may use %XX escapes (%40 for '@'); an unescaped '@' in a
 * redis:// password works too, the last '@' ending the userinfo. Pure
 * parsing plus one file read. */
#ifndef JOBD_REDIS_URL_H
#define JOBD_REDIS_URL_H

#include <stddef.h>

typedef enum {
    REDIS_URL_SINGLE = 0, /* one Redis (redis://, unix://); may turn out a cluster */
    REDIS_URL_CLUSTER,    /* redis+cluster:// */
    REDIS_URL_SENTINEL    /* redis+sentinel:// */
} redis_url_kind_t;

#define REDIS_URL_MAX_HOSTS 8

typedef struct {
    char host[256];
    int port;
} redis_url_host_t;

typedef struct {
    redis_url_kind_t kind;
    int tls; /* rediss:// */
    int is_unix;
    char host[256]; /* the first of hosts */
    int port;
    int nhosts; /* cluster seeds or Sentinels; 1 for redis:// */
    redis_url_host_t hosts[REDIS_URL_MAX_HOSTS];
    char master[128]; /* Sentinel: the primary's name */
    char path[512];
    int db;
    char user[128];
    char password[512];
} redis_url_t;

/* Parses url (NULL: redis://127.0.0.1:6379/0). Returns 0 or JOBD_EINVAL with
 * a message in err that never contains the password. */
int redis_url_parse(const char *url, redis_url_t *u, char *err, size_t errlen);
/* Reads the password from path unless u already has one. Returns 0 or
 * JOBD_EINVAL naming the file. */
int redis_url_password_file(redis_url_t *u, const char *path, char *err, size_t errlen);
/* Writes a loggable form of u into out: the user, if any, but never the
 * password ("***" stands for it). */
void redis_url_describe(const redis_url_t *u, char *out, size_t len);

#endif
