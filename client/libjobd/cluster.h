/* cluster.h - Redis Cluster arithmetic shared by libjobd and jobd: a key's
 * hash slot, the slot map read from CLUSTER SLOTS, and MOVED/ASK replies.
 *
 * DESIGN: a key lives in slot CRC16(tag) mod 16384, where tag is the part
 * between the first '{' and the next '}' if that part is not empty, else
 * the whole key (the cluster spec's rule). jobd's keys carry their queue's
 * tag (or {:global}), so a queue's scripts go to one node. The map names
 * only primaries; a node is an address, and transports keep one connection
 * per address they use. Pure: no I/O. */
#ifndef JOBD_CLUSTER_H
#define JOBD_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_NSLOTS 16384
#define CLUSTER_MAX_NODES 64

typedef struct {
    char host[256];
    int port;
} cluster_addr_t;

typedef struct {
    int nnodes;
    cluster_addr_t node[CLUSTER_MAX_NODES]; /* primaries */
    uint8_t slot[CLUSTER_NSLOTS];           /* node index + 1; 0: no primary */
} cluster_map_t;

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis uses. */
uint16_t cluster_crc16(const char *buf, size_t len);
/* The hash slot of key (0..16383). */
int cluster_key_slot(const char *key, size_t len);

/* Fills m from a CLUSTER SLOTS reply. An empty host in the reply means the
 * node that answered: seed_host is used. Returns 0, or -1 if r is not a
 * slot map (an error reply: cluster support disabled). */
int cluster_map_parse(cluster_map_t *m, const redisReply *r, const char *seed_host);
/* The primary serving slot, or NULL if none does. */
const cluster_addr_t *cluster_map_node(const cluster_map_t *m, int slot);

/* Parses an error reply's text: "MOVED 3999 127.0.0.1:6381" or "ASK ...".
 * Returns 1 (and sets *ask, *slot, *to) for a redirect, 0 otherwise. */
int cluster_redirect_parse(const char *err, int *ask, int *slot, cluster_addr_t *to);

/* Whether two addresses name the same node. */
int cluster_addr_eq(const cluster_addr_t *a, const cluster_addr_t *b);

#endif
