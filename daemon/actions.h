/* actions.h - the console's write actions (api.h lists the paths): pause,
 * resume, purge, retry-dead on a queue; retry, cancel, delete on a job.
 *
 * Each needs the admin token (admin.h: 401 without or with a wrong one,
 * 403 when the console is read-only), runs the same scripts as jobctl
 * (purge and retry-dead in slices, at most ACTION_SLICES calls), and is
 * logged with what, the result, the token id (never the token) and the
 * client's address, and counted. Loop thread only. */
#ifndef JOBD_ACTIONS_H
#define JOBD_ACTIONS_H

#include "console_base.h"

/* Carries out what ("pause", "resume", "purge", "retry-dead", "retry",
 * "cancel", "delete") on queue (and job id, or NULL) and answers req. */
void actions_run(console_t *c, http_req_t *req, const char *what, const char *queue,
                 const char *id);

#endif
