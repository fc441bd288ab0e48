/* redis_url.c - see redis_url.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobd/client.h"
#include "redis_url.h"

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

int redis_url_parse(const char *url, redis_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    u->port = 6379;
    if (!url || !*url) url = "redis://127.0.0.1:6379/0";
    const char *rest;
    if (strncmp(url, "redis://", 8) == 0) {
        rest = url + 8;
        /* The last '@': neither host, port nor db contains one, while an
         * unencoded password might. */
        if (userinfo(u, &rest, strrchr(rest, '@')) < 0) goto bad;
        size_t hl = strcspn(rest, ":/");
        if (hl == 0) {
            strcpy(u->host, "127.0.0.1");
        } else if (copy(u->host, sizeof u->host, rest, hl) < 0) {
            goto bad;
        }
        rest += hl;
        if (*rest == ':') {
            char *end;
            long p = strtol(rest + 1, &end, 10);
            if (end == rest + 1 || p < 1 || p > 65535) goto bad;
            u->port = (int)p;
            rest = end;
        }
        if (*rest == '/') {
            rest++;
            if (*rest) {
                char *end;
                long db = strtol(rest, &end, 10);
                if (end == rest || *end || db < 0 || db > 65535) goto bad;
                u->db = (int)db;
            }
        } else if (*rest) {
            goto bad;
        }
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
             "bad Redis URL (want redis://[USER[:PASSWORD]@]HOST[:PORT][/DB] or "
             "unix://[USER[:PASSWORD]@]/path.sock[?db=N])");
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
    if (u->is_unix)
        snprintf(out, len, "unix://%s%s?db=%d", who, u->path, u->db);
    else
        snprintf(out, len, "redis://%s%s:%d/%d", who, u->host, u->port, u->db);
}
