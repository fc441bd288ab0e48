/* envelope.h - job envelope v1 (schema/job.v1.schema.json): validate,
 * encode, decode, and turn a stored job hash into a status object.
 *
 * Pure: no I/O, so it is unit-tested without Redis. */
#ifndef JOBD_ENVELOPE_H
#define JOBD_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jobd/client.h"

#define ENVELOPE_VERSION 1

/* Encodes spec as a v1 envelope with the given id and creation time. On
 * success *out is a new malloc'd NUL-terminated string (the caller frees it)
 * and *outlen its length. Returns 0 or a JOBD_E* code with a message.
 *
 * The envelope is compact JSON with the fields in this order: v, id, queue,
 * type, payload, priority, max_attempts, created_at, then timeout_s, run_at,
 * idempotency_key, traceparent when set (schema/job.v1.schema.json). The
 * payload is stored as the caller's JSON text with the insignificant
 * whitespace removed (numbers and escapes kept as written); its size limit
 * applies to that compact text. */
int envelope_encode(const jobd_job_spec_t *spec, const char *id, int64_t created_ms,
                    size_t payload_max, char **out, size_t *outlen, char *err, size_t errlen);

/* A growing byte buffer, reused from job to job so that encoding a batch
 * costs no allocation per job. Zero-initialize it; free with
 * envelope_buf_free. */
typedef struct {
    char *buf;
    size_t len, cap;
} envelope_buf_t;

void envelope_buf_free(envelope_buf_t *b);

/* Like envelope_encode, but writes the envelope into b (replacing what it
 * held; b->buf stays NUL-terminated). With checked set the caller vouches
 * that jobd_job_spec_check(spec, payload_max) returned 0, and the spec is
 * not validated (nor its payload parsed) a second time. */
int envelope_encode_buf(const jobd_job_spec_t *spec, const char *id, int64_t created_ms,
                        size_t payload_max, int checked, envelope_buf_t *b, char *err,
                        size_t errlen);

/* A decoded envelope; the strings and payload are borrowed from root. */
typedef struct {
    json_t *root; /* new reference, freed by envelope_clear */
    const char *id, *queue, *type, *traceparent, *idempotency_key;
    json_t *payload;                     /* borrowed; JSON null if absent */
    int priority, max_attempts;          /* max_attempts 0: the job did not set it */
    int64_t timeout_s;                   /* 0: none */
    int64_t retry_base_ms, retry_cap_ms; /* the job's backoff; 0: not set */
} envelope_t;

/* Decodes and validates a stored envelope. Returns 0, or JOBD_EJSON with the
 * reason in err (the job then goes dead with that reason). */
int envelope_decode(const char *text, size_t len, envelope_t *e, char *err, size_t errlen);
void envelope_clear(envelope_t *e);

/* Builds a status object from a job hash given as n field/value pairs
 * (fields[i], values[i] with lengths). Returns a new object, or NULL if the
 * hash has no envelope (no such job). */
json_t *envelope_status(const char *const *fields, const char *const *values, const size_t *vlens,
                        size_t n);

/* Checks a queue or type name. Returns 0 or JOBD_EINVAL. */
int envelope_check_name(const char *what, const char *s, char *err, size_t errlen);

#endif
