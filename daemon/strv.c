/* strv.c - see strv.h. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "strv.h"

char **strv_copy(char *const *v, const char *const *extra)
{
    size_t n = 0, m = 0;
    while (v && v[n])
        n++;
    while (extra && extra[m])
        m++;
    char **out = calloc(n + m + 1, sizeof *out);
    if (!out) return NULL;
    for (size_t i = 0; i < n + m; i++) {
        if (!(out[i] = strdup(i < n ? v[i] : extra[i - n]))) {
            strv_free(out);
            return NULL;
        }
    }
    return out;
}

void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}
