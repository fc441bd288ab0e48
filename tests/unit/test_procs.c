/* Unit tests of daemon/procs.c: the handler process table on a file in a
 * fresh directory under test_tmpdir(). No Redis, no loop. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "exec.h"
#include "procs.h"
#include "test.h"

static const char *state_dir(const char *name)
{
    static char paths[4][600];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 600, "%s/%s", test_tmpdir(), name);
    mkdir(p, 0700);
    return p;
}

static procs_t *open_ok(const char *dir)
{
    procs_t *p = NULL;
    char err[1024] = "";
    if (procs_open(&p, dir, err, sizeof err) != 0 || !p)
        test_fail(__FILE__, __LINE__, "procs_open(%s): %s", dir, err);
    return p;
}

typedef struct {
    procs_rec_t r[8];
    int n;
} seen_t;

static void collect(void *arg, const procs_rec_t *r)
{
    seen_t *s = arg;
    if (s->n < 8) s->r[s->n++] = *r;
}

static seen_t old_of(procs_t *p)
{
    seen_t s = {0};
    procs_each_old(p, collect, &s);
    return s;
}

static procs_rec_t exec_rec(const char *id, int pid)
{
    procs_rec_t r = {.pid = pid, .start = 12345, .attempt = 2, .claimed_at = 1700000000000};
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.token, sizeof r.token, "%s", "7.1700000000000");
    snprintf(r.queue, sizeof r.queue, "%s", "q-exec");
    snprintf(r.type, sizeof r.type, "%s", "t.exec");
    return r;
}

TEST(procs_unit_records_survive_a_reopen_until_forgotten)
{
    const char *dir = state_dir("reopen");
    procs_t *p = open_ok(dir);
    ASSERT_EQ(old_of(p).n, 0);
    procs_rec_t a = exec_rec("0190a0b0-0000-7000-8000-00000000000a", 101);
    procs_rec_t b = exec_rec("0190a0b0-0000-7000-8000-00000000000b", 102);
    procs_rec_t pool = {.pid = 103, .start = 99};
    snprintf(pool.type, sizeof pool.type, "%s", "t.pool");
    int sa = procs_put(p, -1, &a), sb = procs_put(p, -1, &b), sp = procs_put(p, -1, &pool);
    ASSERT_EQ(sa, 0);
    ASSERT_EQ(sb, 1);
    ASSERT_EQ(sp, 2);
    procs_clear(p, sb);
    /* A freed slot is reused first; rewriting a slot in place keeps it. */
    ASSERT_EQ(procs_put(p, -1, &b), 1);
    b.attempt = 3;
    ASSERT_EQ(procs_put(p, 1, &b), 1);
    procs_clear(p, sa);
    procs_close(p); /* a crash of jobd: nothing else is written */

    p = open_ok(dir);
    seen_t s = old_of(p);
    ASSERT_EQ(s.n, 2);
    ASSERT_STR_EQ(s.r[0].id, b.id);
    ASSERT_STR_EQ(s.r[0].token, "7.1700000000000");
    ASSERT_STR_EQ(s.r[0].queue, "q-exec");
    ASSERT_STR_EQ(s.r[0].type, "t.exec");
    ASSERT_EQ(s.r[0].pid, 102);
    ASSERT_EQ(s.r[0].start, 12345);
    ASSERT_EQ(s.r[0].attempt, 3);
    ASSERT_EQ(s.r[0].claimed_at, 1700000000000);
    ASSERT_EQ(s.r[0].this_boot, 1);
    ASSERT_STR_EQ(s.r[1].id, "");
    ASSERT_STR_EQ(s.r[1].type, "t.pool");
    ASSERT_EQ(s.r[1].pid, 103);
    /* The old slots stay taken until recovery is done with them. */
    ASSERT_EQ(procs_put(p, -1, &a), 0);
    procs_forget_old(p);
    ASSERT_EQ(old_of(p).n, 0);
    procs_close(p);

    p = open_ok(dir);
    s = old_of(p);
    ASSERT_EQ(s.n, 1);
    ASSERT_STR_EQ(s.r[0].id, a.id);
    procs_forget_old(p);
    procs_close(p);
    p = open_ok(dir);
    ASSERT_EQ(old_of(p).n, 0);
    procs_close(p);
}

/* Flips one byte of slot `slot` at offset `off` behind the module's back. */
static void poke(const char *dir, int slot, int off, unsigned char v)
{
    char path[700];
    snprintf(path, sizeof path, "%s/procs", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ASSERT(fd >= 0);
    ASSERT_EQ(pwrite(fd, &v, 1, (off_t)slot * 512 + off), 1);
    close(fd);
}

/* Rewrites slot `slot` as if an earlier boot had written it: another boot
 * id (bytes 8..47), the checksum (FNV-1a of bytes 8..511, at 4) made to
 * match. */
static void reboot_slot(const char *dir, int slot)
{
    char path[700];
    snprintf(path, sizeof path, "%s/procs", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ASSERT(fd >= 0);
    unsigned char buf[512];
    ASSERT_EQ(pread(fd, buf, sizeof buf, (off_t)slot * 512), 512);
    buf[8] ^= 0x01;
    uint32_t h = 2166136261u;
    for (size_t i = 8; i < sizeof buf; i++)
        h = (h ^ buf[i]) * 16777619u;
    memcpy(buf + 4, &h, sizeof h);
    ASSERT_EQ(pwrite(fd, buf, sizeof buf, (off_t)slot * 512), 512);
    close(fd);
}

TEST(procs_unit_torn_or_foreign_boot_slots)
{
    const char *dir = state_dir("torn");
    procs_t *p = open_ok(dir);
    procs_rec_t a = exec_rec("0190a0b0-0000-7000-8000-00000000001a", 201);
    procs_rec_t b = exec_rec("0190a0b0-0000-7000-8000-00000000001b", 202);
    ASSERT_EQ(procs_put(p, -1, &a), 0);
    ASSERT_EQ(procs_put(p, -1, &b), 1);
    procs_close(p);
    poke(dir, 0, 100, 0xff); /* inside slot 0's record: its checksum no longer matches */
    p = open_ok(dir);
    seen_t s = old_of(p);
    ASSERT_EQ(s.n, 1);
    ASSERT_STR_EQ(s.r[0].id, b.id);
    procs_close(p);
    /* A slot written in another boot (a different boot id, its checksum
     * made to match): read back, but marked as not of this boot. */
    p = open_ok(dir);
    procs_forget_old(p);
    ASSERT_EQ(procs_put(p, -1, &b), 0);
    procs_close(p);
    reboot_slot(dir, 0);
    p = open_ok(dir);
    s = old_of(p);
    ASSERT_EQ(s.n, 1);
    ASSERT_STR_EQ(s.r[0].id, b.id);
    ASSERT_EQ(s.r[0].this_boot, 0);
    procs_close(p);
}

TEST(procs_unit_kill_only_the_same_process)
{
    pid_t child = fork();
    ASSERT(child >= 0);
    if (child == 0) {
        setsid();
        pause();
        _exit(0);
    }
    /* Wait until the child is in its own group (setsid ran). */
    for (int i = 0; i < 500 && getpgid(child) != child; i++)
        usleep(2000);
    ASSERT_EQ(getpgid(child), child);
    procs_rec_t r = {.pid = child, .start = child_start_time(child), .this_boot = 1};
    ASSERT(r.start > 0);
    procs_rec_t other = r;
    other.start = r.start + 1; /* a reused pid: another process */
    ASSERT_EQ(procs_kill_if_same(&other), 0);
    other = r;
    other.this_boot = 0; /* written before a reboot */
    ASSERT_EQ(procs_kill_if_same(&other), 0);
    ASSERT_EQ(kill(child, 0), 0);
    ASSERT_EQ(procs_kill_if_same(&r), 1);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(procs_unit_unusable_dir)
{
    procs_t *p = NULL;
    char err[1024] = "";
    ASSERT_EQ(procs_open(&p, "/proc/no-such-dir", err, sizeof err), -1);
    ASSERT(p == NULL);
    ASSERT_CONTAINS(err, "/proc/no-such-dir/procs");
}
