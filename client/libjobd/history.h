/* history.h - a job's per-attempt history as stored by the scripts
 * (PREFIX:{Q}:hist:ID, schema/redis/lib.lua), read back for jobctl and jobd's
 * console. Pure: no I/O. */
#ifndef JOBD_HISTORY_H
#define JOBD_HISTORY_H

#include <jansson.h>
#include <stddef.h>

/* Turns one stored entry (JSON text with times in Unix ms) into a new
 * object: attempt, worker, started_at and ended_at (RFC 3339), duration_s,
 * outcome, error (null if none). An entry that is no JSON object (or not
 * UTF-8) gives outcome "unknown" and says so in error. */
json_t *history_entry(const char *text, size_t len);

#endif
