/* procmetrics.h - the standard process_* metrics of the Prometheus client
 * libraries, for jobd itself.
 *
 * process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds and
 * process_start_time_seconds, with the names, types and HELP texts the
 * official clients use, read from /proc/self when asked (handlers, which
 * are child processes, are not included). The start time needs no
 * /proc/stat (systemd's ProcSubset=pid hides it): it is the process's
 * start in clock ticks after boot, placed on the wall clock with
 * CLOCK_BOOTTIME. A figure that cannot be read is left out, never made up.
 * Any thread. */
#ifndef JOBD_PROCMETRICS_H
#define JOBD_PROCMETRICS_H

#include "metrics.h"

/* Appends the process_* metrics. */
void procmetrics_render(metrics_buf_t *b);

#endif
