/* migrate.c - jobd_migrate: moves a Redis layout forward (`jobctl migrate`).
 *
 * DESIGN: layout 1 kept the global keys untagged (PREFIX:schema,
 * PREFIX:queues, PREFIX:workers, PREFIX:worker:ID); layout 2 puts them under
 * the hash tag {:global} (keys.h). Per-queue keys did not change. The steps,
 * each safe to repeat, in an order that makes a run cut short harmless:
 *
 *   1. read both version keys; nothing to do if layout 2 is in place
 *   2. refuse while a layout 1 worker is alive (its record has not expired)
 *   3. copy the queue registry into the new set (SADD: idempotent)
 *   4. write the new version key, then "2" into the old one: from here a
 *      layout 1 binary refuses this Redis, a layout 2 one accepts it
 *   5. copy the registry again (a layout 1 submitter may have added a queue
 *      between 3 and 4), then delete the old registry keys
 *
 * A run that stops before 4 leaves layout 1 as it was (plus a copy); one that
 * stops after 4 is finished by the next run, which finds layout 2 and only
 * repeats the clean-up of 5. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "jobd/version.h"
#include "keys.h"

/* GET key into out (empty: not set). */
static int get_str(jobd_client_t *c, const char *key, char *out, size_t len)
{
    redisReply *r;
    int rc = client_command(c, key, &r, "GET %s", key);
    if (rc < 0) return rc;
    out[0] = '\0';
    if (r->type == REDIS_REPLY_STRING) snprintf(out, len, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

/* Copies the layout 1 queue registry into layout 2's; adds the count to *n. */
static int copy_queues(jobd_client_t *c, long *n)
{
    char from[KEYS_MAX], to[KEYS_MAX];
    keys_legacy(from, c->prefix, "queues");
    keys_global(to, c->prefix, "queues");
    redisReply *m;
    int rc = client_command(c, from, &m, "SMEMBERS %s", from);
    if (rc < 0) return rc;
    for (size_t i = 0; i < m->elements && rc == 0; i++) {
        redisReply *r;
        rc = client_command(c, to, &r, "SADD %s %b", to, m->element[i]->str, m->element[i]->len);
        if (rc == 0) {
            *n += r->integer;
            freeReplyObject(r);
        }
    }
    freeReplyObject(m);
    return rc;
}

/* Live layout 1 workers: ids in PREFIX:workers whose record still exists.
 * Writes up to a few ids into names. */
static int live_workers(jobd_client_t *c, long *live, char *names, size_t len)
{
    char zkey[KEYS_MAX];
    keys_legacy(zkey, c->prefix, "workers");
    redisReply *ids;
    int rc = client_command(c, zkey, &ids, "ZRANGE %s 0 -1", zkey);
    if (rc < 0) return rc;
    *live = 0;
    names[0] = '\0';
    for (size_t i = 0; i < ids->elements && rc == 0; i++) {
        char wk[KEYS_MAX], name[KEYS_MAX];
        snprintf(name, sizeof name, "worker:%s", ids->element[i]->str);
        keys_legacy(wk, c->prefix, name);
        redisReply *r;
        if ((rc = client_command(c, wk, &r, "EXISTS %s", wk)) < 0) break;
        if (r->integer == 1) {
            size_t used = strlen(names);
            if (*live < 5 && used + 2 < len)
                snprintf(names + used, len - used, "%s%s", *live ? ", " : "", ids->element[i]->str);
            (*live)++;
        }
        freeReplyObject(r);
    }
    freeReplyObject(ids);
    return rc;
}

/* Step 5's deletions: the old registry, the old worker records. */
static int drop_legacy(jobd_client_t *c, long *dropped)
{
    char zkey[KEYS_MAX], qkey[KEYS_MAX];
    keys_legacy(zkey, c->prefix, "workers");
    keys_legacy(qkey, c->prefix, "queues");
    redisReply *ids, *r;
    int rc = client_command(c, zkey, &ids, "ZRANGE %s 0 -1", zkey);
    if (rc < 0) return rc;
    for (size_t i = 0; i < ids->elements && rc == 0; i++) {
        char wk[KEYS_MAX], name[KEYS_MAX];
        snprintf(name, sizeof name, "worker:%s", ids->element[i]->str);
        keys_legacy(wk, c->prefix, name);
        if ((rc = client_command(c, wk, &r, "DEL %s", wk)) == 0) {
            *dropped += r->integer;
            freeReplyObject(r);
        }
    }
    freeReplyObject(ids);
    const char *keys[2] = {zkey, qkey};
    for (int i = 0; i < 2 && rc == 0; i++)
        if ((rc = client_command(c, keys[i], &r, "DEL %s", keys[i])) == 0) freeReplyObject(r);
    return rc;
}

static int migrate(jobd_client_t *c, int force, jobd_migrate_result_t *res)
{
    char cur_key[KEYS_MAX], old_key[KEYS_MAX], cur[64], old[64], want[16];
    keys_global(cur_key, c->prefix, "schema");
    keys_legacy(old_key, c->prefix, "schema");
    snprintf(want, sizeof want, "%d", JOBD_REDIS_SCHEMA);
    int rc;
    if ((rc = get_str(c, cur_key, cur, sizeof cur)) < 0) return rc;
    if ((rc = get_str(c, old_key, old, sizeof old)) < 0) return rc;
    res->to = JOBD_REDIS_SCHEMA;
    if (cur[0] && strcmp(cur, want) != 0)
        return client_err(c, JOBD_ESCHEMA,
                          "Redis key %s holds jobd layout version %s, which this build (layout "
                          "%d) does not know how to migrate",
                          cur_key, cur, JOBD_REDIS_SCHEMA);
    if (!old[0] || strcmp(old, want) == 0) {
        /* Layout 2 already (or nothing under this prefix yet): only what a
         * cut-short run may have left of step 5. */
        res->from = cur[0] || old[0] ? JOBD_REDIS_SCHEMA : 0;
        res->already = 1;
        if (old[0] && (rc = copy_queues(c, &res->queues)) < 0) return rc;
        return old[0] ? drop_legacy(c, &res->workers_dropped) : 0;
    }
    if (strcmp(old, "1") != 0)
        return client_err(c, JOBD_ESCHEMA,
                          "Redis key %s holds jobd layout version %s, which this build (layout "
                          "%d) does not know how to migrate",
                          old_key, old, JOBD_REDIS_SCHEMA);
    res->from = 1;
    long live;
    char names[256];
    if ((rc = live_workers(c, &live, names, sizeof names)) < 0) return rc;
    res->live_workers = live;
    if (live && !force)
        return client_err(c, JOBD_ESTATE,
                          "%ld jobd worker%s still registered under layout 1 (%s%s): stop the "
                          "fleet first (drain every jobd), or pass --force if they are gone",
                          live, live == 1 ? " is" : "s are", names, live > 5 ? ", ..." : "");
    if ((rc = copy_queues(c, &res->queues)) < 0) return rc;
    redisReply *r;
    if ((rc = client_command(c, cur_key, &r, "SET %s %s", cur_key, want)) < 0) return rc;
    freeReplyObject(r);
    if ((rc = client_command(c, old_key, &r, "SET %s %s", old_key, want)) < 0) return rc;
    freeReplyObject(r);
    if ((rc = copy_queues(c, &res->queues)) < 0) return rc;
    return drop_legacy(c, &res->workers_dropped);
}

int jobd_migrate(const jobd_client_opts_t *opts, int force, jobd_migrate_result_t *res,
                 char *errbuf, size_t errlen)
{
    memset(res, 0, sizeof *res);
    jobd_client_t *c;
    int rc = client_open(opts, &c, errbuf, errlen, 0);
    if (rc < 0) return rc;
    if ((rc = migrate(c, force, res)) < 0 && errbuf) snprintf(errbuf, errlen, "%s", c->errmsg);
    jobd_client_free(c);
    return rc;
}
