/* Unit tests of the Redis Cluster arithmetic (cluster.c): CRC16 and hash
 * slots against known values, MOVED/ASK parsing, CLUSTER SLOTS parsing. */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "test.h"

static int slot_of(const char *key)
{
    return cluster_key_slot(key, strlen(key));
}

TEST(cluster_crc16_and_slots)
{
    /* The CRC16/XMODEM check value, and slots from the cluster spec and
     * CLUSTER KEYSLOT on redis-server 7.0. */
    ASSERT_EQ(cluster_crc16("123456789", 9), 0x31C3);
    ASSERT_EQ(slot_of("foo"), 12182);
    ASSERT_EQ(slot_of("{user1000}.following"), 3443);
    ASSERT_EQ(slot_of("{user1000}.followers"), 3443);
    ASSERT_EQ(slot_of("user1000"), 3443);
    /* Only the first {...} counts; an empty one is no tag. */
    ASSERT_EQ(slot_of("foo{}{bar}"), cluster_crc16("foo{}{bar}", 10) & 16383);
    ASSERT_EQ(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    ASSERT_EQ(slot_of("foo{bar}{zap}"), slot_of("bar"));
    ASSERT_EQ(slot_of("{"), cluster_crc16("{", 1) & 16383);
    /* jobd's keys: every key of a queue in the queue's slot, the global
     * keys in the slot of ":global". */
    ASSERT_EQ(slot_of("jobd:{mail}:ready"), slot_of("mail"));
    ASSERT_EQ(slot_of("jobd:{mail}:job:0190"), slot_of("mail"));
    ASSERT_EQ(slot_of("jobd:{:global}:schema"), slot_of(":global"));
    ASSERT_EQ(slot_of("other:{:global}:workers"), slot_of(":global"));
}

TEST(cluster_redirect_parse)
{
    int ask = -1, slot = -1;
    cluster_addr_t to;
    ASSERT_EQ(cluster_redirect_parse("MOVED 3999 127.0.0.1:6381", &ask, &slot, &to), 1);
    ASSERT_EQ(ask, 0);
    ASSERT_EQ(slot, 3999);
    ASSERT_STR_EQ(to.host, "127.0.0.1");
    ASSERT_EQ(to.port, 6381);
    ASSERT_EQ(cluster_redirect_parse("ASK 12182 redis-2.local:7000", &ask, &slot, &to), 1);
    ASSERT_EQ(ask, 1);
    ASSERT_STR_EQ(to.host, "redis-2.local");
    ASSERT_EQ(cluster_redirect_parse("MOVED 3999 ::1:6381", &ask, &slot, &to), 1);
    ASSERT_STR_EQ(to.host, "::1");
    ASSERT_EQ(cluster_redirect_parse("ERR unknown command", &ask, &slot, &to), 0);
    ASSERT_EQ(cluster_redirect_parse("MOVED 16384 h:1", &ask, &slot, &to), 0);
    ASSERT_EQ(cluster_redirect_parse("MOVED 1 h:0", &ask, &slot, &to), 0);
    ASSERT_EQ(cluster_redirect_parse("MOVED 1 nocolon", &ask, &slot, &to), 0);
    ASSERT_EQ(cluster_redirect_parse(NULL, &ask, &slot, &to), 0);
}

/* Builds a reply tree by hand, as hiredis's reader would. */
static redisReply *node(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = type;
    return r;
}

static redisReply *integer(long long v)
{
    redisReply *r = node(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *string(const char *s)
{
    redisReply *r = node(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}

static redisReply *array(size_t n, redisReply **e)
{
    redisReply *r = node(REDIS_REPLY_ARRAY);
    r->elements = n;
    r->element = calloc(n, sizeof *r->element);
    memcpy(r->element, e, n * sizeof *e);
    return r;
}

static redisReply *range(long long lo, long long hi, const char *host, int port)
{
    redisReply *ep[] = {string(host), integer(port), string("id")};
    redisReply *e[] = {integer(lo), integer(hi), array(3, ep)};
    return array(3, e);
}

TEST(cluster_map_parse)
{
    redisReply *ranges[] = {range(0, 5460, "10.0.0.1", 7000), range(5461, 10922, "", 7001),
                            range(10923, 16383, "10.0.0.1", 7000)};
    redisReply *r = array(3, ranges);
    cluster_map_t *m = malloc(sizeof *m);
    ASSERT_EQ(cluster_map_parse(m, r, "seed.local"), 0);
    ASSERT_EQ(m->nnodes, 2);
    ASSERT_STR_EQ(cluster_map_node(m, 0)->host, "10.0.0.1");
    ASSERT_EQ(cluster_map_node(m, 16383)->port, 7000);
    /* An empty endpoint is the node that answered. */
    ASSERT_STR_EQ(cluster_map_node(m, 6000)->host, "seed.local");
    ASSERT_EQ(cluster_map_node(m, 6000)->port, 7001);
    freeReplyObject(r);
    /* A hole: no primary serves those slots. */
    redisReply *part[] = {range(0, 99, "h", 1)};
    r = array(1, part);
    ASSERT_EQ(cluster_map_parse(m, r, "s"), 0);
    ASSERT(cluster_map_node(m, 100) == NULL);
    freeReplyObject(r);
    /* Not a map: an error reply (cluster support disabled), bad ranges. */
    r = node(REDIS_REPLY_ERROR);
    r->str = strdup("ERR This instance has cluster support disabled");
    ASSERT_EQ(cluster_map_parse(m, r, "s"), -1);
    freeReplyObject(r);
    redisReply *bad[] = {range(10, 5, "h", 1)};
    r = array(1, bad);
    ASSERT_EQ(cluster_map_parse(m, r, "s"), -1);
    freeReplyObject(r);
    free(m);
}

#include "jobd/client.h"
#include "redis_url.h"

TEST(cluster_sentinel_and_tls_urls)
{
    redis_url_t u;
    char err[512], d[700];
    ASSERT_EQ(redis_url_parse("redis+cluster://a:7000,b:7001,:7002", &u, err, sizeof err), 0);
    ASSERT_EQ(u.kind, REDIS_URL_CLUSTER);
    ASSERT_EQ(u.nhosts, 3);
    ASSERT_STR_EQ(u.hosts[1].host, "b");
    ASSERT_EQ(u.hosts[1].port, 7001);
    ASSERT_STR_EQ(u.hosts[2].host, "127.0.0.1");
    ASSERT_EQ(redis_url_parse("redis+cluster://a:7000/3", &u, err, sizeof err), JOBD_EINVAL);
    ASSERT_CONTAINS(err, "database 0");
    ASSERT_EQ(
        redis_url_parse("redis+sentinel://u:p%40w@s1,s2:26380/mymaster/2", &u, err, sizeof err), 0);
    ASSERT_EQ(u.kind, REDIS_URL_SENTINEL);
    ASSERT_EQ(u.nhosts, 2);
    ASSERT_EQ(u.hosts[0].port, 26379); /* Sentinel's default port */
    ASSERT_STR_EQ(u.master, "mymaster");
    ASSERT_EQ(u.db, 2);
    ASSERT_STR_EQ(u.user, "u");
    ASSERT_STR_EQ(u.password, "p@w");
    redis_url_describe(&u, d, sizeof d);
    ASSERT_STR_EQ(d, "redis+sentinel://u:***@s1:26379,s2:26380/mymaster/2");
    ASSERT(strstr(d, "p@w") == NULL);
    ASSERT_EQ(redis_url_parse("redis+sentinel://s1:26379", &u, err, sizeof err), JOBD_EINVAL);
    ASSERT_EQ(redis_url_parse("redis://a:1,b:2", &u, err, sizeof err), JOBD_EINVAL);
    /* TLS: parsed, then refused by a build without it. */
    ASSERT_EQ(redis_url_parse("rediss://:pw@redis.example:6380/0", &u, err, sizeof err),
              JOBD_EINVAL);
    ASSERT_CONTAINS(err, "not built with TLS");
    ASSERT(strstr(err, "pw") == NULL);
}
