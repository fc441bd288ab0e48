/* apijobs.h - the console's job pages (api.h lists the paths): a queue's
 * jobs by state with paging or found by id or idempotency key (peek.lua
 * for the summaries), one job with its history, and a job found in
 * whichever queue holds it. Read only; every answer comes from Redis
 * replies (503 when Redis is not ready). Loop thread only. */
#ifndef JOBD_APIJOBS_H
#define JOBD_APIJOBS_H

#include "console_base.h"

/* GET /api/v1/queues/Q/jobs?state=S&offset=N&limit=M&q=TEXT */
void apijobs_list(console_t *c, http_req_t *req, const char *queue);
/* GET /api/v1/queues/Q/jobs/ID */
void apijobs_one(console_t *c, http_req_t *req, const char *queue, const char *id);
/* GET /api/v1/jobs/ID: the job in whichever queue holds it. */
void apijobs_find(console_t *c, http_req_t *req, const char *id);

#endif
