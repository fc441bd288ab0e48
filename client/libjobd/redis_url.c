/* redis_url.c - see redis_url.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "redis_url.h"
#include <hiredis/hiredis.h>

static int copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Copies s[0..n) to dst, decoding %XX escapes (a URL's userinfo encodes
 * '@', ':' and '/' that way); a '%' not followed by two hex digits is kept. */
static int copy_decoded(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            ch = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return 0;
}

/* Splits "USER[:PASSWORD]@" or ":PASSWORD@" off the front of *rest, where
 * at is the '@' that ends it (NULL: none). A user alone is a user (an ACL
 * user whose password comes from the password file), never a password. */
static int userinfo(redis_url_t *u, const char **rest, const char *at)
{
    if (!at) return 0;
    const char *colon = memchr(*rest, ':', (size_t)(at - *rest));
    const char *user_end = colon ? colon : at;
    if (copy_decoded(u->user, sizeof u->user, *rest, (size_t)(user_end - *rest)) < 0) return -1;
    if (colon &&
        copy_decoded(u->password, sizeof u->password, colon + 1, (size_t)(at - colon - 1)) < 0)
        return -1;
    *rest = at + 1;
    return 0;
}

/* Parses "HOST[:PORT]" (n bytes at s) into h; an empty host is 127.0.0.1. */
static int host_port(redis_url_host_t *h, const char *s, size_t n, int default_port)
{
    const char *colon = memchr(s, ':', n);
    size_t hl = colon ? (size_t)(colon - s) : n;
    if (hl == 0) {
        strcpy(h->host, "127.0.0.1");
    } else if (copy(h->host, sizeof h->host, s, hl) < 0) {
        return -1;
    }
    h->port = default_port;
    if (colon) {
        char num[8], *end;
        size_t pl = n - hl - 1;
        if (pl == 0 || pl >= sizeof num) return -1;
        memcpy(num, colon + 1, pl);
        num[pl] = '\0';
        long p = strtol(num, &end, 10);
        if (*end || p < 1 || p > 65535) return -1;
        h->port = (int)p;
    }
    return 0;
}

/* Parses "/DB" at s (empty: 0). */
static int db_path(redis_url_t *u, const char *s)
{
    if (!*s) return 0;
    if (*s != '/') return -1;
    s++;
    if (!*s) return 0;
    char *end;
    long db = strtol(s, &end, 10);
    if (end == s || *end || db < 0 || db > 65535) return -1;
    u->db = (int)db;
    return 0;
}

/* The TCP forms: userinfo, a list of hosts, then the path. */
static int parse_tcp(redis_url_t *u, const char *rest, char *err, size_t errlen)
{
    /* The last '@': neither host, port nor path contains one, while an
     * unencoded password might. */
    if (userinfo(u, &rest, strrchr(rest, '@')) < 0) return -1;
    size_t hl = strcspn(rest, "/");
    int default_port = u->kind == REDIS_URL_SENTINEL ? 26379 : 6379;
    const char *p = rest, *end = rest + hl;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (u->nhosts == REDIS_URL_MAX_HOSTS) {
            snprintf(err, errlen, "bad Redis URL: more than %d hosts", REDIS_URL_MAX_HOSTS);
            return -2;
        }
        if (host_port(&u->hosts[u->nhosts++], p, (size_t)(e - p), default_port) < 0) return -1;
        if (!comma) break;
        p = comma + 1;
    }
    if (u->kind == REDIS_URL_SINGLE && u->nhosts > 1) return -1;
    snprintf(u->host, sizeof u->host, "%s", u->hosts[0].host);
    u->port = u->hosts[0].port;
    rest = end;
    if (u->kind == REDIS_URL_SENTINEL) {
        /* "/MASTER[/DB]" */
        if (*rest != '/' || !rest[1]) return -1;
        rest++;
        size_t ml = strcspn(rest, "/");
        if (copy(u->master, sizeof u->master, rest, ml) < 0) return -1;
        rest += ml;
    }
    if (db_path(u, rest) < 0) return -1;
    if (u->kind == REDIS_URL_CLUSTER && u->db != 0) {
        snprintf(err, errlen, "bad Redis URL: a Redis Cluster has only database 0");
        return -2;
    }
    return 0;
}

int redis_url_parse(const char *url, redis_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url) url = "redis://127.0.0.1:6379/0";
    const char *rest;
    static const struct {
        const char *scheme;
        redis_url_kind_t kind;
        int tls;
    } schemes[] = {
        {"redis://", REDIS_URL_SINGLE, 0},
        {"rediss://", REDIS_URL_SINGLE, 1},
        {"redis+cluster://", REDIS_URL_CLUSTER, 0},
        {"redis+sentinel://", REDIS_URL_SENTINEL, 0},
    };
    for (size_t k = 0; k < sizeof schemes / sizeof schemes[0]; k++) {
        size_t n = strlen(schemes[k].scheme);
        if (strncmp(url, schemes[k].scheme, n) != 0) continue;
        u->kind = schemes[k].kind;
        u->tls = schemes[k].tls;
        int rc = parse_tcp(u, url + n, err, errlen);
        if (rc == -1) goto bad;
        if (rc < 0) {
            memset(u->password, 0, sizeof u->password);
            return JOBD_EINVAL;
        }
#ifndef JOBD_HAVE_TLS
        if (u->tls) {
            /* The switch for a TLS-capable hiredis (1.x with hiredis_ssl):
             * define JOBD_HAVE_TLS and wrap the connections. */
            memset(u->password, 0, sizeof u->password);
            snprintf(err, errlen,
                     "rediss:// (TLS): this build is not built with TLS (hiredis %d.%d has "
                     "none); run a TLS sidecar such as stunnel and point redis:// at it "
                     "(deploy/redis/README.md)",
                     HIREDIS_MAJOR, HIREDIS_MINOR);
            return JOBD_EINVAL;
        }
#endif
        return 0;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        u->is_unix = 1;
        rest = url + 7;
        /* The path starts with '/', so "@/" ends the userinfo. */
        if (*rest != '/' && userinfo(u, &rest, strstr(rest, "@/")) < 0) goto bad;
        size_t pl = strcspn(rest, "?");
        if (pl == 0 || *rest != '/' || copy(u->path, sizeof u->path, rest, pl) < 0) goto bad;
        rest += pl;
        if (*rest == '?') {
            if (strncmp(rest, "?db=", 4) != 0) goto bad;
            char *end;
            long db = strtol(rest + 4, &end, 10);
            if (end == rest + 4 || *end || db < 0 || db > 65535) goto bad;
            u->db = (int)db;
        }
        return 0;
    }
bad:
    memset(u->password, 0, sizeof u->password);
    snprintf(err, errlen,
             "bad Redis URL (want redis://[USER[:PASSWORD]@]HOST[:PORT][/DB], "
             "unix://[USER[:PASSWORD]@]/path.sock[?db=N], "
             "redis+cluster://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT...] or "
             "redis+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,...]/MASTER[/DB])");
    return JOBD_EINVAL;
}

int redis_url_password_file(redis_url_t *u, const char *path, char *err, size_t errlen)
{
    if (u->password[0] || !path || !*path) return 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read Redis password file %s: %m", path);
        return JOBD_EINVAL;
    }
    if (!fgets(u->password, sizeof u->password, f)) u->password[0] = '\0';
    fclose(f);
    u->password[strcspn(u->password, "\r\n")] = '\0';
    return 0;
}

void redis_url_describe(const redis_url_t *u, char *out, size_t len)
{
    /* The user name is no secret and tells which ACL user was refused. */
    char who[160] = "";
    if (u->user[0])
        snprintf(who, sizeof who, "%s%s@", u->user, u->password[0] ? ":***" : "");
    else if (u->password[0])
        snprintf(who, sizeof who, "***@");
    if (u->is_unix) {
        snprintf(out, len, "unix://%s%s?db=%d", who, u->path, u->db);
        return;
    }
    static const char *const schemes[] = {"redis", "redis+cluster", "redis+sentinel"};
    int n = snprintf(out, len, "%s%s://%s", schemes[u->kind], u->tls ? "s" : "", who);
    for (int i = 0; i < u->nhosts && n >= 0 && (size_t)n < len; i++)
        n += snprintf(out + n, len - (size_t)n, "%s%s:%d", i ? "," : "", u->hosts[i].host,
                      u->hosts[i].port);
    if (n < 0 || (size_t)n >= len) return;
    if (u->kind == REDIS_URL_SENTINEL)
        snprintf(out + n, len - (size_t)n, "/%s/%d", u->master, u->db);
    else
        snprintf(out + n, len - (size_t)n, "/%d", u->db);
}
