/* dashboard.h - the console's web page: static HTML, CSS and JavaScript
 * written by hand (daemon/dashboard/), embedded in the binary at build time
 * by schema/embed.cmake, served at / with no network, CDN or framework.
 *
 *   /            index.html   (also every path the page routes itself)
 *   /app.js      the page's script: hash routes, fetches /api/v1, EventSource
 *   /style.css   the page's style (laptop and phone)
 *
 * Answers carry a Content-Security-Policy that allows only these files and
 * same-origin requests (no inline script, no framing), nosniff, and no
 * cookies. GET and HEAD only (405 otherwise). */
#ifndef JOBD_DASHBOARD_H
#define JOBD_DASHBOARD_H

#include "http.h"

/* Answers req with a dashboard file, 404 or 405. */
void dashboard_serve(http_req_t *req);

#endif
