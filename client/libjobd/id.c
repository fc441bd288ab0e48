/* id.c - time-ordered job ids (UUIDv7, RFC 9562).
 *
 * 48 bits of Unix ms, then a 12-bit counter that keeps ids made in the same
 * millisecond by this process in order (RFC 9562 method 1), then 62 random
 * bits from getrandom(). Random bytes are fetched in blocks to keep batch
 * submission off the syscall path.
 *
 * The state is process-wide (that is what keeps ids monotonic in the
 * process), so a mutex guards it: clients in different threads make ids
 * concurrently. A forked child drops the inherited pool, or parent and
 * child would hand out the same "random" bits. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "jobd/client.h"

static struct {
    uint8_t pool[4096];
    size_t used;
    int64_t last_ms;
    unsigned counter;
} g = {.used = sizeof g.pool};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    g.used = sizeof g.pool;
    pthread_mutex_init(&lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static void random_bytes(uint8_t *out, size_t n)
{
    if (g.used + n > sizeof g.pool) {
        size_t got = 0;
        while (got < sizeof g.pool) {
            ssize_t r = getrandom(g.pool + got, sizeof g.pool - got, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break; /* keep the old bytes; ids stay unique by time and counter */
            got += (size_t)r;
        }
        g.used = 0;
    }
    memcpy(out, g.pool + g.used, n);
    g.used += n;
}

void jobd_id_new(char *out)
{
    pthread_once(&once, register_atfork);
    uint8_t b[16];
    pthread_mutex_lock(&lock);
    int64_t ms = jobd_now_ms();
    if (ms <= g.last_ms) {
        ms = g.last_ms;
        if (++g.counter > 0xfff) { /* counter wrapped: borrow the next ms */
            ms++;
            g.counter = 0;
        }
    } else {
        g.counter = 0;
    }
    g.last_ms = ms;
    unsigned counter = g.counter;
    random_bytes(b + 8, 8);
    pthread_mutex_unlock(&lock);

    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (counter >> 8));
    b[7] = (uint8_t)(counter & 0xff);
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));

    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}
