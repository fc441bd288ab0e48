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

void proto_argv_addll(proto_argv_t *a, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    proto_argv_add(a, b, (size_t)n);
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
