/* metrics.c - see metrics.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void metrics_hist_init(metrics_hist_t *h)
{
    /* Up to 10 s as the Prometheus clients' defaults, then minutes: the
     * duration alert's threshold (1800 s) is a bound, so whether p99 passes
     * it is read off the buckets, not interpolated. */
    static const double b[METRICS_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,  1,   2.5,
                                              5,     10,   30,    60,   300, 600,  1800, 3600};
    memset(h, 0, sizeof *h);
    memcpy(h->bounds, b, sizeof b);
}

void metrics_hist_observe(metrics_hist_t *h, double s)
{
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        if (s <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    }
    h->count++;
    h->sum += s;
}

void metrics_printf(metrics_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n)
            ncap *= 2;
        char *nb = realloc(b->buf, ncap);
        if (!nb) return;
        b->buf = nb;
        b->cap = ncap;
    }
}

void metrics_hist_render_series(metrics_buf_t *b, const char *name, const char *labels,
                                const metrics_hist_t *h)
{
    long long cum = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        metrics_printf(b, "%s_bucket{%s,le=\"%g\"} %lld\n", name, labels, h->bounds[i], cum);
    }
    metrics_printf(b, "%s_bucket{%s,le=\"+Inf\"} %lld\n%s_sum{%s} %.6f\n%s_count{%s} %lld\n", name,
                   labels, h->count, name, labels, h->sum, name, labels, h->count);
}
