/* metrics.h - counters, gauges and histograms in Prometheus text format.
 *
 * The daemon owns the numbers (stats.h, jobmetrics.h); this module gives
 * them the text buffer and the histogram type they render with. Loop
 * thread only. */
#ifndef JOBD_METRICS_H
#define JOBD_METRICS_H

#include <stddef.h>

#define METRICS_BUCKETS 17

typedef struct {
    double bounds[METRICS_BUCKETS];
    long long counts[METRICS_BUCKETS]; /* per bucket, not cumulative */
    long long count;
    double sum;
} metrics_hist_t;

/* Sets up the job duration buckets (5 ms .. 1 h, then +Inf). */
void metrics_hist_init(metrics_hist_t *h);
void metrics_hist_observe(metrics_hist_t *h, double seconds);

typedef struct {
    char *buf;
    size_t len, cap;
} metrics_buf_t;

void metrics_printf(metrics_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the series of one histogram with labels ("k=\"v\",...", not
 * empty): its buckets, sum and count; the family's HELP and TYPE are the
 * caller's. */
void metrics_hist_render_series(metrics_buf_t *b, const char *name, const char *labels,
                                const metrics_hist_t *h);

#endif
