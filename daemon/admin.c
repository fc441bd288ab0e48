/* admin.c - see admin.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"

#define TOKEN_FILE_MAX 4096

/* ---- SHA-256 ---- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (size_t i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void admin_sha256(const void *data, size_t len, uint8_t out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t n = len;
    while (n >= 64) {
        block(h, p);
        p += 64;
        n -= 64;
    }
    uint8_t tail[128] = {0};
    memcpy(tail, p, n);
    tail[n] = 0x80;
    size_t tl = n + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - (size_t)i] = (uint8_t)(bits >> (8 * i));
    block(h, tail);
    if (tl == 128) block(h, tail + 64);
    for (size_t i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

int admin_digest_eq(const uint8_t a[32], const uint8_t b[32])
{
    volatile uint8_t diff = 0;
    for (int i = 0; i < 32; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    return diff == 0;
}

static void hex_id(const uint8_t d[32], char out[9])
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < 4; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[8] = '\0';
}

/* ---- the token file ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* (Re)reads the token file; sets have, digest, id or why. */
static void load(admin_t *a)
{
    a->read_ms = mono_ms();
    int had = a->have;
    char old_id[9];
    memcpy(old_id, a->id, sizeof old_id);
    a->have = 0;
    memset(a->digest, 0, sizeof a->digest);
    if (!a->path[0]) {
        snprintf(a->why, sizeof a->why,
                 "read-only: no admin token configured (set JOBD_ADMIN_TOKEN_FILE)");
        return;
    }
    int fd = open(a->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(a->why, sizeof a->why, "read-only: cannot read JOBD_ADMIN_TOKEN_FILE %.512s: %s",
                 a->path, strerror(errno));
        if (had) log_warn("console: %s", a->why);
        return;
    }
    char buf[TOKEN_FILE_MAX + 1];
    ssize_t n = read(fd, buf, TOKEN_FILE_MAX);
    close(fd);
    if (n < 0) n = 0;
    buf[n] = '\0';
    /* The first line, without surrounding blanks. */
    size_t len = strcspn(buf, "\r\n");
    char *t = buf;
    while (len && (*t == ' ' || *t == '\t')) {
        t++;
        len--;
    }
    while (len && (t[len - 1] == ' ' || t[len - 1] == '\t'))
        len--;
    if (len < ADMIN_TOKEN_MIN) {
        snprintf(a->why, sizeof a->why,
                 "read-only: the token in JOBD_ADMIN_TOKEN_FILE is %zu bytes, under %d", len,
                 ADMIN_TOKEN_MIN);
        explicit_bzero(buf, sizeof buf);
        if (had) log_warn("console: %s", a->why);
        return;
    }
    admin_sha256(t, len, a->digest);
    explicit_bzero(buf, sizeof buf);
    hex_id(a->digest, a->id);
    a->have = 1;
    a->why[0] = '\0';
    if (!had || strcmp(old_id, a->id) != 0)
        log_info("console: write actions need the admin token %s (Authorization: Bearer)", a->id);
}

void admin_init(admin_t *a)
{
    memset(a, 0, sizeof *a);
    const char *p = getenv("JOBD_ADMIN_TOKEN_FILE");
    if (p && *p) snprintf(a->path, sizeof a->path, "%s", p);
    load(a);
    if (!a->have) log_info("console: %s", a->why);
}

const char *admin_why(const admin_t *a)
{
    return a->why;
}

admin_verdict_t admin_check(admin_t *a, const char *auth, char *id_out)
{
    id_out[0] = '\0';
    if (a->path[0] && mono_ms() - a->read_ms >= 1000) load(a);
    if (!a->have) return ADMIN_READ_ONLY;
    if (strncasecmp(auth, "Bearer ", 7) != 0) return ADMIN_NO_TOKEN;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    size_t len = strlen(t);
    while (len && t[len - 1] == ' ')
        len--;
    if (len == 0) return ADMIN_NO_TOKEN;
    uint8_t d[32];
    admin_sha256(t, len, d);
    if (!admin_digest_eq(d, a->digest)) {
        hex_id(d, id_out);
        return ADMIN_BAD_TOKEN;
    }
    memcpy(id_out, a->id, 9);
    return ADMIN_OK;
}
