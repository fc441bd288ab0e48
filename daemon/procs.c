/* procs.c - see procs.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "exec.h"
#include "log.h"
#include "procs.h"

#define SLOT 512u         /* bytes per slot: a divisor of the page, so one pwrite never spans two */
#define MAGIC 0x6a6f7031u /* a used slot, format 1 */
#define BOOT_ID_LEN 40

/* A slot as it is on disk (native byte order: the file never leaves the
 * machine). The checksum covers everything after it. */
typedef struct {
    uint32_t magic, sum;
    char boot[BOOT_ID_LEN];
    int64_t start, claimed_at;
    int32_t pid, attempt;
    char id[JOBD_ID_LEN + 1];
    char token[PROCS_TOKEN_MAX];
    char queue[PROCS_NAME_MAX];
    char type[PROCS_NAME_MAX];
} disk_t;
_Static_assert(sizeof(disk_t) <= SLOT, "a record fits its slot");

struct procs {
    int fd;
    int failing; /* the last write failed (logged once until one works again) */
    char boot[BOOT_ID_LEN];
    unsigned char *used; /* per slot */
    size_t nslots;       /* length of used */
    procs_rec_t *old;    /* what an earlier run left */
    int *old_slots;
    size_t nold;
    char path[1024];
};

static uint32_t checksum(const unsigned char *buf)
{
    uint32_t h = 2166136261u; /* FNV-1a over the slot after magic and sum */
    for (size_t i = 8; i < SLOT; i++)
        h = (h ^ buf[i]) * 16777619u;
    return h;
}

static void read_boot_id(char *out)
{
    memset(out, 0, BOOT_ID_LEN);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f) return;
    if (!fgets(out, BOOT_ID_LEN, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

/* Marks slot i used (or not), growing the table. -1 on out-of-memory. */
static int mark(procs_t *p, size_t i, int used)
{
    if (i >= p->nslots) {
        size_t n = p->nslots ? p->nslots : 64;
        while (n <= i)
            n *= 2;
        unsigned char *u = realloc(p->used, n);
        if (!u) return -1;
        memset(u + p->nslots, 0, n - p->nslots);
        p->used = u;
        p->nslots = n;
    }
    p->used[i] = (unsigned char)used;
    return 0;
}

static void from_disk(const procs_t *p, const disk_t *d, procs_rec_t *r)
{
    memset(r, 0, sizeof *r);
    r->pid = d->pid;
    r->start = d->start;
    r->attempt = d->attempt;
    r->claimed_at = d->claimed_at;
    memcpy(r->id, d->id, sizeof r->id);
    memcpy(r->token, d->token, sizeof r->token);
    memcpy(r->queue, d->queue, sizeof r->queue);
    memcpy(r->type, d->type, sizeof r->type);
    r->id[sizeof r->id - 1] = r->token[sizeof r->token - 1] = '\0';
    r->queue[sizeof r->queue - 1] = r->type[sizeof r->type - 1] = '\0';
    r->this_boot = strncmp(d->boot, p->boot, BOOT_ID_LEN) == 0;
}

/* Reads the earlier run's slots into p->old. */
static int load_old(procs_t *p)
{
    struct stat st;
    if (fstat(p->fd, &st) < 0) return -1;
    size_t n = (size_t)st.st_size / SLOT;
    if (!n) return 0;
    p->old = calloc(n, sizeof *p->old);
    p->old_slots = calloc(n, sizeof *p->old_slots);
    if (!p->old || !p->old_slots) return -1;
    unsigned char buf[SLOT];
    for (size_t i = 0; i < n; i++) {
        if (pread(p->fd, buf, SLOT, (off_t)(i * SLOT)) != (ssize_t)SLOT) return -1;
        disk_t d;
        memcpy(&d, buf, sizeof d);
        if (d.magic != MAGIC || d.sum != checksum(buf)) continue; /* empty, or torn */
        if (mark(p, i, 1) < 0) return -1;
        from_disk(p, &d, &p->old[p->nold]);
        p->old_slots[p->nold++] = (int)i;
    }
    return 0;
}

int procs_open(procs_t **out, const char *state_dir, char *err, size_t errlen)
{
    *out = NULL;
    procs_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(p->path, sizeof p->path, "%s/procs", state_dir);
    read_boot_id(p->boot);
    p->fd = open(p->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (p->fd < 0 || load_old(p) < 0) {
        snprintf(err, errlen, "handler process table %s: cannot open or read it: %s", p->path,
                 strerror(errno ? errno : ENOMEM));
        procs_close(p);
        return -1;
    }
    *out = p;
    return 0;
}

void procs_close(procs_t *p)
{
    if (!p) return;
    if (p->fd >= 0) close(p->fd);
    free(p->used);
    free(p->old);
    free(p->old_slots);
    free(p);
}

static int fits(const char *s, size_t size)
{
    return strnlen(s, size) < size;
}

static void write_failed(procs_t *p, const char *why)
{
    if (!p->failing)
        log_error("handler process table %s: cannot record a handler process (%s); its job "
                  "waits for the journal's commit instead",
                  p->path, why);
    p->failing = 1;
}

int procs_put(procs_t *p, int slot, const procs_rec_t *r)
{
    if (!fits(r->id, sizeof r->id) || !fits(r->token, sizeof r->token) ||
        !fits(r->queue, sizeof r->queue) || !fits(r->type, sizeof r->type)) {
        write_failed(p, "a name too long for a slot");
        return -1;
    }
    size_t i = 0;
    if (slot >= 0)
        i = (size_t)slot;
    else
        while (i < p->nslots && p->used[i])
            i++;
    if (mark(p, i, 1) < 0) {
        write_failed(p, "out of memory");
        return -1;
    }
    unsigned char buf[SLOT] = {0};
    disk_t d;
    memset(&d, 0, sizeof d);
    d.magic = MAGIC;
    memcpy(d.boot, p->boot, sizeof d.boot);
    d.start = r->start;
    d.claimed_at = r->claimed_at;
    d.pid = r->pid;
    d.attempt = r->attempt;
    memcpy(d.id, r->id, strlen(r->id));
    memcpy(d.token, r->token, strlen(r->token));
    memcpy(d.queue, r->queue, strlen(r->queue));
    memcpy(d.type, r->type, strlen(r->type));
    memcpy(buf, &d, sizeof d);
    d.sum = checksum(buf);
    memcpy(buf, &d, sizeof d);
    if (pwrite(p->fd, buf, SLOT, (off_t)(i * SLOT)) != (ssize_t)SLOT) {
        write_failed(p, strerror(errno ? errno : ENOSPC));
        if (slot < 0) p->used[i] = 0;
        return -1;
    }
    if (p->failing) log_info("handler process table %s: writable again", p->path);
    p->failing = 0;
    return (int)i;
}

void procs_clear(procs_t *p, int slot)
{
    if (!p || slot < 0 || (size_t)slot >= p->nslots || !p->used[slot]) return;
    static const uint32_t zero[2] = {0, 0}; /* magic and checksum: an empty slot */
    if (pwrite(p->fd, zero, sizeof zero, (off_t)((size_t)slot * SLOT)) != (ssize_t)sizeof zero)
        log_error("handler process table %s: cannot clear slot %d: %s (the next jobd may "
                  "release a lease that is gone: Redis refuses that)",
                  p->path, slot, strerror(errno));
    p->used[slot] = 0;
}

void procs_each_old(const procs_t *p, void (*cb)(void *arg, const procs_rec_t *r), void *arg)
{
    for (size_t i = 0; p && i < p->nold; i++)
        cb(arg, &p->old[i]);
}

void procs_forget_old(procs_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nold; i++)
        procs_clear(p, p->old_slots[i]);
    free(p->old);
    free(p->old_slots);
    p->old = NULL;
    p->old_slots = NULL;
    p->nold = 0;
}

int procs_kill_if_same(const procs_rec_t *r)
{
    if (!r->this_boot || r->pid <= 0 || r->start <= 0 || child_start_time(r->pid) != r->start)
        return 0;
    return kill(-r->pid, SIGKILL) == 0;
}
