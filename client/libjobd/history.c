/* history.c - see history.h. */
#include <stdio.h>

#include "history.h"
#include "jobd/client.h"

static json_t *time_or_null(const json_t *ms)
{
    if (!json_is_number(ms) || json_number_value(ms) <= 0) return json_null();
    char b[40];
    jobd_format_rfc3339((int64_t)json_number_value(ms), b, sizeof b);
    return json_string(b);
}

json_t *history_entry(const char *text, size_t len)
{
    json_t *in = json_loadb(text, len, 0, NULL);
    if (!json_is_object(in)) {
        /* Written by our scripts, so this is damage or bytes that are not
         * UTF-8 in an error text: shown, not dropped. */
        json_decref(in);
        return json_pack("{s:i, s:s, s:n, s:n, s:n, s:s, s:s}", "attempt", 0, "worker", "",
                         "started_at", "ended_at", "duration_s", "outcome", "unknown", "error",
                         "history entry is not readable JSON");
    }
    const json_t *st = json_object_get(in, "started_at"), *en = json_object_get(in, "ended_at");
    const json_t *worker = json_object_get(in, "worker"), *outcome = json_object_get(in, "outcome");
    const json_t *err = json_object_get(in, "error");
    json_t *o = json_object();
    json_object_set_new(
        o, "attempt", json_integer((json_int_t)json_number_value(json_object_get(in, "attempt"))));
    json_object_set_new(o, "worker",
                        json_string(json_is_string(worker) ? json_string_value(worker) : ""));
    json_object_set_new(o, "started_at", time_or_null(st));
    json_object_set_new(o, "ended_at", time_or_null(en));
    double s = json_number_value(st), e = json_number_value(en);
    json_object_set_new(o, "duration_s",
                        s > 0 && e >= s ? json_real((e - s) / 1000.0) : json_null());
    json_object_set_new(
        o, "outcome",
        json_string(json_is_string(outcome) ? json_string_value(outcome) : "unknown"));
    json_object_set_new(o, "error", json_is_string(err) ? json_copy((json_t *)err) : json_null());
    json_decref(in);
    return o;
}
