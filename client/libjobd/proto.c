/* proto.c - see proto.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "proto.h"

const char *proto_script_text(proto_script_t s, size_t *len)
{
    *len = jobd_lua_scripts[s].len;
    return jobd_lua_scripts[s].text;
}

const char *proto_script_name(proto_script_t s)
{
    return jobd_lua_scripts[s].name;
}

void proto_argv_init(proto_argv_t *a)
{
    memset(a, 0, sizeof *a);
}

void proto_argv_reset(proto_argv_t *a)
{
    a->len = 0;
    a->argc = 0;
    a->oom = 0;
}

void proto_argv_free(proto_argv_t *a)
{
    free(a->buf);
    free(a->offs);
    free(a->lens);
    free(a->argv);
    free(a->resp);
    memset(a, 0, sizeof *a);
}

static int grow_args(proto_argv_t *a)
{
    int ncap = a->acap ? a->acap * 2 : 64;
    size_t *o = realloc(a->offs, (size_t)ncap * sizeof *o);
    if (!o) return -1;
    a->offs = o;
    size_t *l = realloc(a->lens, (size_t)ncap * sizeof *l);
    if (!l) return -1;
    a->lens = l;
    a->acap = ncap;
    return 0;
}

void proto_argv_add(proto_argv_t *a, const char *s, size_t len)
{
    if (a->oom) return;
    if (a->argc == a->acap && grow_args(a) < 0) {
        a->oom = 1;
        return;
    }
    if (a->len + len + 1 > a->cap) {
        size_t ncap = a->cap ? a->cap : 4096;
        while (ncap < a->len + len + 1)
            ncap *= 2;
        char *nb = realloc(a->buf, ncap);
        if (!nb) {
            a->oom = 1;
            return;
        }
        a->buf = nb;
        a->cap = ncap;
    }
    if (len) memcpy(a->buf + a->len, s, len);
    a->buf[a->len + len] = '\0';
    a->offs[a->argc] = a->len;
    a->lens[a->argc] = len;
    a->argc++;
    a->len += len + 1;
}

void proto_argv_adds(proto_argv_t *a, const char *s)
{
    proto_argv_add(a, s ? s : "", s ? strlen(s) : 0);
}

/* Writes v in decimal ending just before end; returns where it starts.
 * Batches format several numbers per job: no printf. */
static char *fmt_ull(char *end, unsigned long long v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

void proto_argv_addll(proto_argv_t *a, long long v)
{
    char b[24], *end = b + sizeof b;
    char *p = fmt_ull(end, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    if (v < 0) *--p = '-';
    proto_argv_add(a, p, (size_t)(end - p));
}

void proto_argv_addd(proto_argv_t *a, double v)
{
    char b[64];
    int n = snprintf(b, sizeof b, "%.6g", v);
    proto_argv_add(a, b, (size_t)n);
}

void proto_argv_script(proto_argv_t *a, const char *sha, const char *queue_prefix)
{
    proto_argv_adds(a, "EVALSHA");
    proto_argv_adds(a, sha);
    proto_argv_adds(a, "1");
    proto_argv_adds(a, queue_prefix);
}

const char **proto_argv_finish(proto_argv_t *a, const size_t **lens)
{
    if (a->oom) return NULL;
    const char **v = realloc(a->argv, (size_t)(a->argc ? a->argc : 1) * sizeof *v);
    if (!v) return NULL;
    a->argv = v;
    for (int i = 0; i < a->argc; i++)
        v[i] = a->buf + a->offs[i];
    *lens = a->lens;
    return v;
}

const char *proto_argv_resp(proto_argv_t *a, size_t *len)
{
    if (a->oom) return NULL;
    /* Each argument costs at most "$" + 20 digits + 2 CRLFs beyond its bytes. */
    size_t need = 32 + a->len + (size_t)a->argc * 25;
    if (need > a->resp_cap) {
        char *nr = realloc(a->resp, need);
        if (!nr) return NULL;
        a->resp = nr;
        a->resp_cap = need;
    }
    char num[24], *p = a->resp;
    char *d = fmt_ull(num + sizeof num, (unsigned long long)a->argc);
    *p++ = '*';
    memcpy(p, d, (size_t)(num + sizeof num - d));
    p += num + sizeof num - d;
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < a->argc; i++) {
        d = fmt_ull(num + sizeof num, a->lens[i]);
        *p++ = '$';
        memcpy(p, d, (size_t)(num + sizeof num - d));
        p += num + sizeof num - d;
        *p++ = '\r';
        *p++ = '\n';
        memcpy(p, a->buf + a->offs[i], a->lens[i]);
        p += a->lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *len = (size_t)(p - a->resp);
    return a->resp;
}
