/* metrics.h - counters, gauges and histograms in Prometheus text format.
 *
 * The daemon owns the numbers (stats.h); this module
 * renders them, plus the job duration histogram it keeps, and the queue
 * depths health.c polls from Redis every few seconds. Loop thread only. */
#ifndef JOBD_METRICS_H
#define JOBD_METRICS_H

#include <stddef.h>

#define METRICS_BUCKETS 14

typedef struct {
    double bounds[METRICS_BUCKETS];
    long long counts[METRICS_BUCKETS]; /* per bucket, not cumulative */
    long long count;
    double sum;
} metrics_hist_t;

/* Sets up the job duration buckets (5 ms .. 1 h). */
void metrics_hist_init(metrics_hist_t *h);
void metrics_hist_observe(metrics_hist_t *h, double seconds);

typedef struct {
    char *buf;
    size_t len, cap;
} metrics_buf_t;

void metrics_printf(metrics_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void metrics_hist_render(metrics_buf_t *b, const char *name, const char *help,
                         const metrics_hist_t *h);

#endif
