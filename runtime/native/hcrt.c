/*
 * hcontainer in-process runtime (see hcrt.h for the contract).
 *
 * Source side: a migration point (__hc_migrate_point, asm) saves every
 * register and calls __hc_migrate_point_c, which writes a raw dump of the
 * process (registers, memory, TLS block, files) for the hcontainer CLI, tells
 * it where the dump is, and parks until told to exit (the destination has
 * confirmed) or to continue (the rewrite refused, or the destination died).
 *
 * Destination side: the constructor maps the snapshot's memory at its old
 * addresses, copies the TLS block, reopens files, then calls main() in
 * restore mode: every instrumented function on the way re-enters its frame
 * from its frame record until the innermost migration point returns.
 */
#define _GNU_SOURCE
#include "hcrt.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <sys/auxv.h>
#include <elf.h>
#include <locale.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define HC_ISA 1
#define HC_ARG0 5 /* rdi, DWARF number */
#elif defined(__aarch64__)
#define HC_ISA 2
#define HC_ARG0 0 /* x0 */
#else
#error "unsupported ISA"
#endif

/* ---- State. Everything here except __hc_ssp and the anchor is arch-local:
 * hld places this object's data in the region restore never overwrites. ---- */

volatile int __hc_poll;
__thread char *__hc_ssp;
/* The innermost function that cannot migrate and is calling out (hcc sets
 * it around such a function's calls): a migration point declines at once. */
__thread const void *__hc_unmigratable;
/* First byte of the TLS block in every variant (hld places it first). */
__thread long __hc_tls_anchor = 0x6863746c73; /* "hctls": in .tdata, not .tbss */

const unsigned char __hc_zero_page[4096] __attribute__((aligned(4096)));
/* The main thread's errno, migrated data (hld keeps it out of the
 * arch-local region): musl keeps errno in the thread descriptor, whose
 * place beside the TLS block differs per ISA, so `&errno` kept in memory
 * went stale in a migration. */
int __hc_main_errno __attribute__((section(".bss.__hc_main_errno")));

/* Where polls write their frame record (hcc: abi::POLL_RECORD). Not
 * arch-local (hld: SHARED_RUNTIME): the dump must hold it, since the
 * rewriter reads the innermost record from there. */
unsigned char __hc_poll_record[HC_POLL_RECORD_SIZE] __attribute__((aligned(16), section(".bss.__hc_poll_record")));
/* The blocking call a migration interrupted (hcrt.h): not arch-local (hld:
 * SHARED_RUNTIME), the destination makes the call again. */
struct hc_pending __hc_pending __attribute__((section(".bss.__hc_pending")));
void __wrap___hc_resume_blocked_call(void); /* asm, "Blocking calls" */
/* Set by a poll before it writes the buffer, cleared by every
 * migration-point call (abi::POLL_RECORD_BUSY). */
volatile int __hc_poll_record_busy;
/* Patched by hld after linking: identifies the build across variants. */
const unsigned char __hc_build_id[16] __attribute__((used)) = {'h', 'c', 'b', 'u', 'i', 'l', 'd', '-', 'i', 'd'};

/* The id as the binary holds it after hld patched it (never the initializer
 * above, which the compiler would otherwise fold into comparisons). */
static const unsigned char *build_id(void) {
    const unsigned char *id = __hc_build_id;
    __asm__("" : "+r"(id));
    return id;
}

extern char __hc_image_start[], __hc_image_end[];
extern char __hc_data_start[], __hc_data_end[];
extern char __hc_local_start[], __hc_local_end[];
extern char **__environ;
extern int main(int, char **, char **);

static struct {
    int ctl;            /* control socket to hcontainer, -1 if none */
    long countdown;     /* migration points until the next migration (0: none) */
    int signo;          /* signal that requests a migration (0: none) */
    char dir[512];      /* where dumps go */
    uint64_t argv_start, stack_end;
    uint64_t shadow_base, shadow_size;
    uint64_t main_tp;   /* the main thread's thread pointer (errno: __hc_main_errno) */
    unsigned seq;
    int restoring;
    int fault_restore_exit;
    int adopted; /* started plainly, supervised since `hcontainer adopt` */
    char start_name[16]; /* this process's name at start: another one the program chose */
    int lock_refused;    /* the last dump waited for a POSIX record lock */
    /* CPU time the program used before this process (user, system), so
     * its CPU clocks go on from there instead of starting again at 0. */
    int64_t cpu_user_off, cpu_sys_off;
    /* A process started as root keeps an unnamed file open in the dump
     * directory: a program that then became another user can no longer
     * create files there, and writes its dump into this one. */
    int spare_fd;
    const struct hc_process *creds; /* restore: the user to become at the end */
    volatile int retry_on_unlock; /* hcontainer retries: try again when one is released */
    uint64_t declined_since; /* the request waits for a function that cannot migrate to return */
    uint64_t busy_since;     /* ... with the polls on since then (HC_BUSY_NS) */
    /* The program installed a seccomp filter (or strict mode): it takes no
     * migration requests any more (seccomp_install). */
    volatile int sandboxed;
    /* restore */
    const unsigned char *snap;
    size_t snap_len;
    int snap_fd; /* open while regions are mapped from it */
    const unsigned char *mem; /* the memory file (the dump), if the snapshot names one */
    size_t mem_len;
    int mem_fd;
    uint64_t file_dev[2], file_ino[2]; /* the snapshot and memory file regions were mapped from */
    const unsigned char *frame; /* current frame record */
    uint32_t frames_left;
    int32_t saved_errno;
    struct timespec restore_t0;
} hc = {.ctl = -1, .snap_fd = -1, .mem_fd = -1, .spare_fd = -1};

/* musl's calls that hld wraps for the program (blocking calls): the
 * runtime's own reads and writes use them directly. */
extern ssize_t __real_read(int, void *, size_t);
extern ssize_t __real_readv(int, const void *, int);
extern ssize_t __real_write(int, const void *, size_t);
extern ssize_t __real_writev(int, const void *, int);
extern ssize_t __real_recv(int, void *, size_t, int);
extern ssize_t __real_recvfrom(int, void *, size_t, int, void *, void *);
extern ssize_t __real_recvmsg(int, void *, int);
extern ssize_t __real_send(int, const void *, size_t, int);
extern ssize_t __real_sendto(int, const void *, size_t, int, const void *, socklen_t);
extern ssize_t __real_sendmsg(int, const void *, int);
extern int __real_accept(int, void *, void *);
extern int __real_accept4(int, void *, void *, int);
extern int __real_poll(void *, unsigned long, int);
extern int __real_select(int, void *, void *, void *, void *);
extern int __real_pause(void);
extern unsigned __real_sleep(unsigned);
extern int __real_usleep(unsigned);
extern int __real_nanosleep(const struct timespec *, struct timespec *);
extern int __real_clock_nanosleep(clockid_t, int, const struct timespec *, struct timespec *);

/* Set by the request signal, read by hc_blocking_syscall before it waits
 * (hcrt.c "Blocking calls"); cleared when the request is taken. */
volatile int hc_blocking_request;
/* Request signals received (sleeps they interrupt go on: sleep_on). */
static volatile unsigned hc_request_signals;

/* Threads started and not yet finished, besides the main thread. */
static volatile int hc_threads;
/* POSIX timers alive (timer_create minus timer_delete): a dump cannot
 * carry them — a timer_t is the kernel's id natively and qemu's own id
 * under qemu-user, and the program keeps it in its memory. */
static volatile int hc_timers;

/* ---- Polls (FORMATS §5 "Polls"). In the program's code a poll is a no-op
 * that __hc_polls lists with its slow path; while __hc_poll is set, every
 * listed no-op is a jump there. poll_set is the only writer of __hc_poll. ---- */

struct hc_poll_entry {
    int32_t at;   /* the no-op, relative to this field */
    int32_t slow; /* the slow path, relative to the no-op */
};
extern const struct hc_poll_entry __start___hc_polls[] __attribute__((weak, visibility("hidden")));
extern const struct hc_poll_entry __stop___hc_polls[] __attribute__((weak, visibility("hidden")));
static int polls_patched;
static void say(const char *msg);

#if defined(__x86_64__)
typedef uint16_t hc_u16u __attribute__((aligned(1), may_alias));

/* nopl 0(%rax,%rax,1) <-> jmp rel32. Another thread may be running the
 * code (threads run, though they do not migrate): it must only ever find
 * whole instructions, so the first two bytes change with one store and
 * the rest while they read `jmp .+5` (HotSpot patches entry jumps so). */
static void poll_write(unsigned char *p, int64_t slow, int on) {
    unsigned char want[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    if (on) {
        int32_t rel = (int32_t)(slow - 5);
        want[0] = 0xe9;
        memcpy(want + 1, &rel, 4);
    }
    if (!memcmp(p, want, 5)) return;
    *(volatile hc_u16u *)p = 0x03eb;
    for (int i = 2; i < 5; i++) ((volatile unsigned char *)p)[i] = want[i];
    *(volatile hc_u16u *)p = (uint16_t)(want[0] | want[1] << 8);
}
#else
/* nop <-> b: one aligned word, which the architecture lets another thread
 * run while it changes. */
static void poll_write(unsigned char *p, int64_t slow, int on) {
    uint32_t want = on ? 0x14000000u | ((uint32_t)(slow >> 2) & 0x03ffffffu) : 0xd503201fu;
    __atomic_store_n((uint32_t *)p, want, __ATOMIC_RELAXED);
}
#endif

/* ---- Redirected entries (FORMATS §5 "Entries"): a function whose entry
 * poll is no instruction; while __hc_poll is set its entry jumps to its
 * resume copy, which polls at its own entry. ---- */

struct hc_entry {
    int32_t fn;   /* the function's entry, relative to this field */
    int32_t copy; /* its resume copy, relative to this field */
};
extern const struct hc_entry __start___hc_entries[] __attribute__((weak, visibility("hidden")));
extern const struct hc_entry __stop___hc_entries[] __attribute__((weak, visibility("hidden")));
/* Each entry's original bytes, saved when first redirected (the code
 * generator may list an entry twice: only the first listing saves). */
static uint32_t *entries_saved;

#if defined(__x86_64__)
/* The first instruction (at least two bytes: "prologue-short-redirect") <->
 * `jmp .-7` to the `jmp rel32` hcc put before the entry, in one store. */
static uint32_t entry_write(unsigned char *fn, unsigned char *copy, uint32_t saved, int on) {
    (void)copy;
    uint16_t jmp = 0xf9eb, now = *(volatile hc_u16u *)fn;
    if (on) {
        if (now == jmp) return UINT32_MAX;
        *(volatile hc_u16u *)fn = jmp;
        return now;
    }
    if (saved != UINT32_MAX) *(volatile hc_u16u *)fn = (uint16_t)saved;
    return saved;
}
#else
/* The first instruction <-> `b copy`, one aligned word. */
static uint32_t entry_write(unsigned char *fn, unsigned char *copy, uint32_t saved, int on) {
    uint32_t b = 0x14000000u | ((uint32_t)((copy - fn) >> 2) & 0x03ffffffu);
    uint32_t now = __atomic_load_n((uint32_t *)fn, __ATOMIC_RELAXED);
    if (on) {
        if (now == b) return UINT32_MAX;
        __atomic_store_n((uint32_t *)fn, b, __ATOMIC_RELAXED);
        return now;
    }
    if (saved != UINT32_MAX) __atomic_store_n((uint32_t *)fn, saved, __ATOMIC_RELAXED);
    return saved;
}
#endif

static void widen(uint64_t *lo, uint64_t *hi, uint64_t at) {
    if (at < *lo) *lo = at;
    if (at + 8 > *hi) *hi = at + 8;
}

/* Makes every poll a jump and every redirected entry a jump to its copy
 * (on), or both what they were again. */
static void polls_patch(int on) {
    const struct hc_poll_entry *e = __start___hc_polls, *end = __stop___hc_polls;
    const struct hc_entry *r = __start___hc_entries, *rend = __stop___hc_entries;
    if (!e) e = end = 0;
    if (!r) r = rend = 0;
    if ((e == end && r == rend) || polls_patched == on) return;
    size_t nr = (size_t)(rend - r);
    if (nr && !entries_saved) {
        void *m = mmap(0, nr * sizeof *entries_saved, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            say("cannot allocate memory to switch the program's polls on");
            _exit(70);
        }
        entries_saved = m;
    }
    uint64_t lo = UINT64_MAX, hi = 0;
    for (const struct hc_poll_entry *i = e; i < end; i++)
        widen(&lo, &hi, (uint64_t)&i->at + (int64_t)i->at);
    for (const struct hc_entry *i = r; i < rend; i++)
        widen(&lo, &hi, (uint64_t)&i->fn + (int64_t)i->fn);
    lo &= ~(uint64_t)4095;
    hi = (hi + 4095) & ~(uint64_t)4095;
    if (mprotect((void *)lo, hi - lo, PROT_READ | PROT_WRITE | PROT_EXEC)) {
        say("cannot make the program's code writable to switch its polls on");
        _exit(70);
    }
    for (const struct hc_poll_entry *i = e; i < end; i++) {
        unsigned char *at = (unsigned char *)&i->at + i->at;
        poll_write(at, i->slow, on);
    }
    /* Entries in reverse when switching off, so a listing that saved
     * nothing (a duplicate) comes before the one that saved the bytes. */
    for (size_t k = 0; k < nr; k++) {
        size_t j = on ? k : nr - 1 - k;
        const struct hc_entry *i = r + j;
        unsigned char *fn = (unsigned char *)&i->fn + i->fn;
        unsigned char *copy = (unsigned char *)&i->copy + i->copy;
        entries_saved[j] = entry_write(fn, copy, on ? 0 : entries_saved[j], on);
    }
    __builtin___clear_cache((char *)lo, (char *)hi);
    mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC);
    polls_patched = on;
}

/* ---- Label tables (FORMATS §5 "Label tables"): a computed-goto dispatch
 * loop has no poll of its own; while __hc_poll is set, the table it loads
 * its next label from holds trampolines that poll on the way to each
 * label. The tables are each variant's own data (arch-local). ---- */

struct hc_table {
    int32_t table; /* the table the dispatch loads from, relative to this field */
    int32_t plain; /* its contents, relative to this field */
    int32_t poll;  /* the trampolines' table, relative to this field */
    uint32_t len;  /* entries */
};
extern const struct hc_table __start___hc_tables[] __attribute__((weak, visibility("hidden")));
extern const struct hc_table __stop___hc_tables[] __attribute__((weak, visibility("hidden")));

/* Every entry changes with one aligned store: another thread dispatching
 * meanwhile finds either label, both of which go on to it. */
static void tables_switch(int on) {
    const struct hc_table *t = __start___hc_tables, *end = __stop___hc_tables;
    if (!t) return;
    for (; t < end; t++) {
        void **dst = (void **)((char *)&t->table + t->table);
        void *const *src = on ? (void *const *)((char *)&t->poll + t->poll)
                              : (void *const *)((char *)&t->plain + t->plain);
        for (uint32_t k = 0; k < t->len; k++) __atomic_store_n(&dst[k], src[k], __ATOMIC_RELAXED);
    }
}

/* Sets the poll word and the polls with it, the request signal blocked so
 * its handler never finds the two disagreeing. */
static void poll_set(int v) {
    sigset_t block, old;
    sigemptyset(&block);
    if (hc.signo > 0) sigaddset(&block, hc.signo);
    sigprocmask(SIG_BLOCK, &block, &old);
    __hc_poll = v;
    if (v == HC_POLL_OFF) hc_blocking_request = 0;
    polls_patch(v != HC_POLL_OFF);
    tables_switch(v != HC_POLL_OFF);
    sigprocmask(SIG_SETMASK, &old, 0);
}

/* ---- Small helpers without libc allocation or stdio. ---- */

static size_t hc_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

static void write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = __real_write(fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        c += w;
        n -= (size_t)w;
    }
}

static char *put_str(char *o, const char *s) {
    while (*s) *o++ = *s++;
    return o;
}

static char *put_u64(char *o, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *o++ = tmp[--n];
    return o;
}

static char *put_hex(char *o, uint64_t v) {
    o = put_str(o, "0x");
    int started = 0;
    for (int i = 60; i >= 0; i -= 4) {
        int d = (int)((v >> i) & 15);
        if (d || started || i == 0) {
            *o++ = "0123456789abcdef"[d];
            started = 1;
        }
    }
    return o;
}

static uint64_t parse_u64(const char *s) {
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
    return v;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void ctl_send(const char *msg) {
    if (hc.ctl >= 0) write_all(hc.ctl, msg, hc_strlen(msg));
}

/* Reads one line from the control socket; returns its length, -1 on EOF. */
static int ctl_recv(char *buf, int cap) {
    int n = 0;
    while (n < cap - 1) {
        ssize_t r = __real_read(hc.ctl, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        if (buf[n] == '\n') break;
        n++;
    }
    buf[n] = 0;
    return n;
}

/* Pipes and sockets: reopening by path cannot bring them back, so they go
 * to hcontainer itself (SCM_RIGHTS), which gives them to the destination at
 * the same numbers — the same open pipe or socket, a listening port never
 * closed. */
#define HC_MAX_PASSED 200
static int passed_fds[HC_MAX_PASSED];
static int n_passed_fds;

/* Hands the pipes and sockets the dump found to hcontainer, when it asks:
 * "FDS <n>" announces them, "SENDFDS" is the go-ahead (so the descriptors
 * arrive in a message of their own), then one message carries their
 * numbers as text and the descriptors. */
static void pass_fds(void) {
    if (!n_passed_fds) return;
    char line[64], *o = put_str(line, "FDS ");
    o = put_u64(o, (uint64_t)n_passed_fds);
    *o++ = '\n';
    *o = 0;
    ctl_send(line);
    char reply[32];
    if (ctl_recv(reply, sizeof reply) < 0 || strncmp(reply, "SENDFDS", 7)) return;
    static char text[HC_MAX_PASSED * 12];
    char *t = text;
    for (int i = 0; i < n_passed_fds; i++) {
        t = put_u64(t, (uint64_t)passed_fds[i]);
        *t++ = i + 1 < n_passed_fds ? ',' : '\n';
    }
    static union {
        char buf[CMSG_SPACE(sizeof(int) * HC_MAX_PASSED)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = text, .iov_len = (size_t)(t - text)};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_passed_fds)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_passed_fds);
    memcpy(CMSG_DATA(c), passed_fds, sizeof(int) * (size_t)n_passed_fds);
    while (__real_sendmsg(hc.ctl, &mh, 0) < 0 && errno == EINTR) {
    }
}

static void say(const char *msg) {
    write_all(2, "hcontainer runtime: ", 20);
    write_all(2, msg, hc_strlen(msg));
    write_all(2, "\n", 1);
}

/* A restore that cannot go on: tell hcontainer (the source is still parked
 * and will continue) and end this process without running any program code. */
static void __attribute__((noreturn)) restore_fail_at(const char *why, uint64_t a, int decimal);
static void __attribute__((noreturn)) restore_fail(const char *why, uint64_t a) { restore_fail_at(why, a, 0); }
/* A failure about a file, named by path (its last 400 bytes). */
static void __attribute__((noreturn)) restore_fail_path(const char *why, const char *path) {
    static char msg[512];
    size_t n = hc_strlen(path);
    char *o = put_str(msg, why);
    o = put_str(o, ": ");
    put_str(o, n > 400 ? path + n - 400 : path);
    restore_fail(msg, 0);
}
/* A failure about file descriptor `fd` (named in decimal). */
static void __attribute__((noreturn)) restore_fail_fd(const char *why, int fd) { restore_fail_at(why, (uint64_t)fd, 1); }

static void __attribute__((noreturn)) restore_fail_at(const char *why, uint64_t a, int decimal) {
    char buf[600];
    char *o = put_str(buf, "FAIL ");
    o = put_str(o, why);
    if (a || decimal) {
        o = put_str(o, " ");
        o = decimal ? put_u64(o, a) : put_hex(o, a);
    }
    *o++ = '\n';
    *o = 0;
    if (hc.ctl >= 0) ctl_send(buf);
    else say(buf + 5);
    _exit(70);
}

static const char *getenv_raw(const char *name) {
    size_t n = hc_strlen(name);
    for (char **e = __environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
    return 0;
}

/* Removes HCONTAINER_* from the environment so the program sees the
 * environment it was started with. */
static void strip_env(void) {
    char **w = __environ;
    if (!w) return;
    for (char **r = __environ; *r; r++)
        if (strncmp(*r, "HCONTAINER_", 11)) *w++ = *r;
    *w = 0;
}

/* ---- /proc/self/maps, parsed without allocation. ---- */

struct map {
    uint64_t start, end;
    int prot;
    int shared;        /* MAP_SHARED ('s' in the permissions) */
    uint64_t offset;   /* in the file mapped */
    uint64_t dev, ino; /* of a file mapping (0 otherwise) */
    char name[1024];
};

typedef int (*map_fn)(const struct map *m, void *arg);

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* One line of a maps file, [l, l + n), into *m. */
static void parse_map_line(const char *l, size_t n, struct map *m) {
    memset(m, 0, sizeof *m);
    size_t i = 0;
    int d;
    while (i < n && (d = hex_digit(l[i])) >= 0) m->start = m->start * 16 + (uint64_t)d, i++;
    i++; /* '-' */
    while (i < n && (d = hex_digit(l[i])) >= 0) m->end = m->end * 16 + (uint64_t)d, i++;
    i++; /* ' ' */
    if (i + 3 < n) {
        if (l[i] == 'r') m->prot |= PROT_READ;
        if (l[i + 1] == 'w') m->prot |= PROT_WRITE;
        if (l[i + 2] == 'x') m->prot |= PROT_EXEC;
        m->shared = l[i + 3] == 's';
    }
    /* the offset (hex), dev (major:minor, hex) and inode */
    while (i < n && l[i] != ' ') i++;
    while (i < n && l[i] == ' ') i++;
    while (i < n && (d = hex_digit(l[i])) >= 0) m->offset = m->offset * 16 + (uint64_t)d, i++;
    while (i < n && l[i] == ' ') i++;
    uint64_t major = 0, minor = 0;
    while (i < n && (d = hex_digit(l[i])) >= 0) major = major * 16 + (uint64_t)d, i++;
    if (i < n && l[i] == ':') i++;
    while (i < n && (d = hex_digit(l[i])) >= 0) minor = minor * 16 + (uint64_t)d, i++;
    m->dev = makedev(major, minor);
    while (i < n && l[i] == ' ') i++;
    while (i < n && l[i] >= '0' && l[i] <= '9') m->ino = m->ino * 10 + (uint64_t)(l[i] - '0'), i++;
    while (i < n && l[i] == ' ') i++;
    size_t k = 0;
    while (i < n && k < sizeof m->name - 1) m->name[k++] = l[i++];
    m->name[k] = 0;
}

/* Calls fn for each complete line of buf[0, have) (all of it when `done`);
 * returns how many bytes it consumed, and fn's first nonzero answer in *rc. */
static size_t parse_map_lines(const char *buf, size_t have, int done, map_fn fn, void *arg, int *rc) {
    struct map m;
    size_t pos = 0;
    while (pos < have && *rc == 0) {
        size_t eol = pos;
        while (eol < have && buf[eol] != '\n') eol++;
        if (eol == have && !done) break;
        parse_map_line(buf + pos, eol - pos, &m);
        if (m.end > m.start) *rc = fn(&m, arg);
        pos = eol + 1;
    }
    return pos < have ? pos : have;
}

static int for_each_map_in(const char *path, map_fn fn, void *arg) {
    static char buf[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t have = 0;
    int done = 0, rc = 0;
    while (!done && rc == 0) {
        ssize_t r = __real_read(fd, buf + have, sizeof buf - have);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) done = 1;
        else have += (size_t)r;
        size_t pos = parse_map_lines(buf, have, done, fn, arg, &rc);
        memmove(buf, buf + pos, have - pos);
        have -= pos;
    }
    close(fd);
    return rc;
}

/* /proc/self/maps read whole, for the passes of one dump over the same
 * view (under qemu-user every read costs about 1.5 ms: qemu makes the text
 * up). In the runtime's own (arch-local) bss, so that it is no mapping the
 * dump would carry; a text that does not fit is read again per pass. */
static char maps_text[1 << 18];
static size_t maps_len;

static void read_maps_text(void) {
    maps_len = 0;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
        ssize_t r = __real_read(fd, maps_text + maps_len, sizeof maps_text - maps_len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        maps_len += (size_t)r;
        if (maps_len == sizeof maps_text) {
            maps_len = 0; /* too long: no partial view */
            break;
        }
    }
    close(fd);
}

/* fn over the text read_maps_text kept, or over a fresh read without one. */
static int for_each_kept_map(map_fn fn, void *arg) {
    if (!maps_len) return for_each_map_in("/proc/self/maps", fn, arg);
    int rc = 0;
    parse_map_lines(maps_text, maps_len, 1, fn, arg, &rc);
    return rc;
}

static int for_each_map(map_fn fn, void *arg) {
    return for_each_map_in("/proc/self/maps", fn, arg);
}

static int find_stack(const struct map *m, void *arg) {
    uint64_t *a = arg;
    if (m->start <= a[0] && a[0] < m->end) {
        a[1] = m->end;
        return 1;
    }
    return 0;
}

/* The argv/env area starts at argc, just below argv[], which ends just
 * below environ[]: find argc by walking down from environ. */
static void find_argv_area(void) {
    if (!__environ) return;
    long *p = (long *)__environ - 1; /* argv's terminating NULL */
    for (long n = 0; n < 1 << 20; n++) {
        long v = p[-n - 1];
        if (v == n) {
            hc.argv_start = (uint64_t)(p - n - 1);
            break;
        }
        if (v == 0) return;
    }
    uint64_t a[2] = {hc.argv_start, 0};
    for_each_map(find_stack, a);
    hc.stack_end = a[1];
}

/* ---- Dump. ---- */

struct out {
    int fd;
    int failed;
    uint64_t flushed; /* bytes already in the file */
    size_t len;
    unsigned char buf[1 << 16];
};
static struct out dump_out;

static void out_flush(struct out *o) {
    if (o->len) write_all(o->fd, o->buf, o->len);
    o->flushed += o->len;
    o->len = 0;
}

static void out_bytes(struct out *o, const void *p, size_t n) {
    if (n > sizeof o->buf / 2) {
        out_flush(o);
        const char *c = p;
        while (n > 0) {
            ssize_t w = __real_write(o->fd, c, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                o->failed = 1;
                return;
            }
            c += w;
            n -= (size_t)w;
            o->flushed += (uint64_t)w;
        }
        return;
    }
    if (o->len + n > sizeof o->buf) out_flush(o);
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void out_pad(struct out *o, size_t n) {
    static const unsigned char zeros[8];
    if (n % 8) out_bytes(o, zeros, 8 - n % 8);
}

static void out_record(struct out *o, uint32_t kind, uint64_t len) {
    uint32_t h[2] = {kind, 0};
    out_bytes(o, h, 8);
    out_bytes(o, &len, 8);
}

/* Large data starts on a page of the dump: a migration's snapshot refers
 * to it there, and the destination maps it from the dump (copy-on-write)
 * rather than anyone copying it again. */
static void out_region(struct out *o, uint64_t addr, uint64_t map_len, uint64_t data_len, int prot, int kind) {
    static const unsigned char zeros[4096];
    uint64_t data_at = o->flushed + o->len + 16 + sizeof(struct hc_region_hdr);
    uint32_t skip = data_len >= HC_MAP_THRESHOLD && addr % 4096 == 0 ? (uint32_t)((4096 - data_at % 4096) % 4096) : 0;
    struct hc_region_hdr h = {addr, map_len, data_len, (uint32_t)prot, (uint32_t)kind, skip, HC_SOURCE_INLINE};
    out_record(o, HC_REC_REGION, sizeof h + skip + data_len);
    out_bytes(o, &h, sizeof h);
    out_bytes(o, zeros, skip);
    out_bytes(o, (const void *)addr, data_len);
    out_pad(o, skip + data_len);
}

struct dump_ctx {
    struct out *o;
    uint64_t sp;
    const char *path; /* the dump's file (hcontainer watches it grow) */
};

/* First page after this variant's image (its arch-local region). */
static uint64_t image_end(void) {
    return ((uint64_t)__hc_local_end + 4095) & ~(uint64_t)4095;
}

/* Emits the part of [s, e) that is not inside [cs, ce). */
static void emit_clipped(struct out *o, uint64_t s, uint64_t e, uint64_t cs, uint64_t ce, int prot, int kind) {
    if (ce <= s || cs >= e) {
        if (e > s) out_region(o, s, e - s, e - s, prot, kind);
        return;
    }
    if (cs > s) out_region(o, s, cs - s, cs - s, prot, kind);
    if (ce < e) out_region(o, ce, e - ce, e - ce, prot, kind);
}

static int runtime_file_map(uint64_t s, uint64_t e);

/* Whether a mapping overlaps this variant's image (code, data, arch-local). */
static int in_image(const struct map *m) {
    return m->start < image_end() && m->end > (uint64_t)__hc_image_start;
}

/* Whether a mapping is of a file deleted since: no path maps it again. */
static int deleted_file(const struct map *m) {
    size_t n = hc_strlen(m->name);
    return m->name[0] == '/' && n > 10 && !strcmp(m->name + n - 10, " (deleted)");
}

/* A file the program mapped (outside the image, not one of the runtime's
 * own memory-file mappings, not deleted), which a restore maps again from
 * the file instead of carrying its bytes: its read-only and shared
 * mappings (a private writable one is the program's own copy, carried as
 * data). */
static int program_file_map(const struct map *m) {
    if (m->name[0] != '/' || !(m->prot & PROT_READ)) return 0;
    if ((m->prot & PROT_WRITE) && !m->shared) return 0;
    if (hc_strlen(m->name) >= sizeof m->name - 1 || deleted_file(m) || in_image(m)) return 0;
    uint64_t snap = (uint64_t)hc.snap, mem = (uint64_t)hc.mem;
    if (hc.snap && m->start < snap + hc.snap_len && snap < m->end) return 0;
    if (hc.mem && m->start < mem + hc.mem_len && mem < m->end) return 0;
    return !runtime_file_map(m->start, m->end);
}

/* Anonymous memory the program made read-only (a table it built, then
 * mprotected): carried as data like writable memory, restored with its
 * protection. Not code, not the image, not the kernel's pages. */
static int program_read_only_memory(const struct map *m) {
    if ((m->prot & PROT_EXEC) || in_image(m)) return 0;
    /* A deleted file's mapping cannot be mapped again: its bytes travel. */
    if (m->name[0] && !deleted_file(m) && strcmp(m->name, "[heap]") && strncmp(m->name, "[anon:", 6)) return 0;
    return !runtime_file_map(m->start, m->end);
}

/* Address space the program reserved (PROT_NONE), to commit later with
 * mprotect (an arena): restored as a reservation, no data. Not the shadow
 * stack's guard page, which its region brings back. */
static int program_reservation(const struct map *m) {
    if (m->name[0] || in_image(m)) return 0;
    if (hc.shadow_base && m->start < hc.shadow_base + hc.shadow_size && hc.shadow_base < m->end) return 0;
    return !runtime_file_map(m->start, m->end);
}

/* A file region's data: offset u64 | flags u32 (1: shared) | pad u32 | path. */
static void out_file_region(struct out *o, const struct map *m) {
    if (m->shared && (m->prot & PROT_WRITE)) msync((void *)m->start, m->end - m->start, MS_SYNC);
    size_t n = hc_strlen(m->name);
    struct hc_region_hdr h = {m->start, m->end - m->start, 16 + n, (uint32_t)m->prot, HC_REGION_FILE, 0, HC_SOURCE_INLINE};
    uint32_t flags[2] = {(uint32_t)m->shared, 0};
    out_record(o, HC_REC_REGION, sizeof h + 16 + n);
    out_bytes(o, &h, sizeof h);
    out_bytes(o, &m->offset, 8);
    out_bytes(o, flags, 8);
    out_bytes(o, m->name, n);
    out_pad(o, 16 + n);
}

static int for_each_fd(int (*fn)(int fd, void *arg), void *arg);

/* Shared memory no path maps again: MAP_SHARED anonymous memory ("/dev/zero
 * (deleted)") or a file deleted since (a memfd). Restored as private memory
 * it would not be shared any more: with a child forked later, or with the
 * file's descriptor (write() and the mapping would part). */
static int shared_without_path(const struct map *m) {
    return m->shared && (m->prot & PROT_READ) && deleted_file(m) && !in_image(m) && !runtime_file_map(m->start, m->end);
}

struct fd_of {
    uint64_t dev, ino;
    int fd;
};

static int note_fd_of(int fd, void *arg) {
    struct fd_of *f = arg;
    struct stat st;
    if (fstat(fd, &st) || st.st_dev != f->dev || st.st_ino != f->ino) return 0;
    f->fd = fd;
    return 1;
}

static int dump_map(const struct map *m, void *arg) {
    struct dump_ctx *d = arg;
    if (program_file_map(m)) {
        out_file_region(d->o, m);
        return 0;
    }
    if (shared_without_path(m)) {
        /* Its file still open (it goes to the destination as it is): the
         * memory lives there, and the mapping is made again from it. */
        struct fd_of f = {m->dev, m->ino, -1};
        if (m->ino && for_each_fd(note_fd_of, &f)) {
            struct hc_region_hdr h = {m->start, m->end - m->start, 24, (uint32_t)m->prot, HC_REGION_SHARED_FD, 0, HC_SOURCE_INLINE};
            uint64_t body[3] = {m->offset, m->dev, m->ino};
            out_record(d->o, HC_REC_REGION, sizeof h + sizeof body);
            out_bytes(d->o, &h, sizeof h);
            out_bytes(d->o, body, sizeof body);
        } else {
            out_region(d->o, m->start, m->end - m->start, m->end - m->start, m->prot, HC_REGION_SHARED);
        }
        return 0;
    }
    if (!(m->prot & (PROT_READ | PROT_WRITE | PROT_EXEC))) {
        if (program_reservation(m)) out_region(d->o, m->start, m->end - m->start, 0, 0, HC_REGION_ANON);
        return 0;
    }
    if (!(m->prot & PROT_READ)) return 0;
    if (!(m->prot & PROT_WRITE)) {
        if (program_read_only_memory(m)) out_region(d->o, m->start, m->end - m->start, m->end - m->start, m->prot, HC_REGION_ANON);
        return 0;
    }
    if (!strcmp(m->name, "[vvar]") || !strcmp(m->name, "[vdso]") || !strcmp(m->name, "[vsyscall]")) return 0;
    uint64_t s = m->start, e = m->end;
    /* The shadow stack: only its used part matters. */
    if (hc.shadow_base && s <= hc.shadow_base && hc.shadow_base < e) {
        uint64_t used = (uint64_t)__hc_ssp - hc.shadow_base;
        used = (used + 4095) & ~(uint64_t)4095;
        if (used > hc.shadow_size) used = hc.shadow_size;
        out_region(d->o, hc.shadow_base, hc.shadow_size, used, PROT_READ | PROT_WRITE, HC_REGION_SHADOW);
        emit_clipped(d->o, s, e, hc.shadow_base, hc.shadow_base + hc.shadow_size + 4096, m->prot, HC_REGION_ANON);
        return 0;
    }
    /* The native stack: the unwinder reads frames from it; restore maps only
     * the argv/env area. */
    if (s <= d->sp && d->sp < e) {
        uint64_t from = d->sp & ~(uint64_t)4095;
        out_region(d->o, from, e - from, e - from, m->prot, HC_REGION_STACK);
        return 0;
    }
    /* The image ends with the arch-local region; what follows it in the
     * same mapping (qemu's brk heap) is ordinary memory. */
    uint64_t is = (uint64_t)__hc_image_start, ie = image_end();
    uint64_t ds = (uint64_t)__hc_data_start, de = (uint64_t)__hc_data_end;
    if (e <= is || s >= ie) {
        out_region(d->o, s, e - s, e - s, m->prot, HC_REGION_ANON);
        return 0;
    }
    /* Inside the image only the aligned data is migrated. */
    uint64_t a = s > ds ? s : ds, b = e < de ? e : de;
    if (b > a) out_region(d->o, a, b - a, b - a, m->prot, HC_REGION_IMAGE);
    if (e > ie) out_region(d->o, ie, e - ie, e - ie, m->prot, HC_REGION_ANON);
    if (s < is) out_region(d->o, s, is - s, is - s, m->prot, HC_REGION_ANON);
    return 0;
}

/* Under qemu-user, /proc/self/maps is qemu's view of the program: it
 * leaves out every host mapping the kernel merged with one of qemu's own
 * (adjacent, same flags), the program's pages in it included — heap went
 * missing from dumps that way. /proc/thread-self/maps is the host's view;
 * a page there that qemu lets the program read (write(2) of one byte to
 * /dev/null succeeds) is the program's. Natively the views agree and no
 * page is probed. */
#define HC_MAX_MAPS 4096
static struct { uint64_t s, e; } seen_maps[HC_MAX_MAPS];
static int n_seen_maps;

static int note_map(const struct map *m, void *arg) {
    uint64_t *writable = arg; /* bytes a dump may write, for hcontainer's progress bar */
    if ((m->prot & PROT_READ) && (m->prot & PROT_WRITE)) *writable += m->end - m->start;
    if (n_seen_maps < HC_MAX_MAPS) {
        seen_maps[n_seen_maps].s = m->start;
        seen_maps[n_seen_maps].e = m->end;
        n_seen_maps++;
    }
    return 0;
}

/* End of the seen map holding `a`, or 0. */
static uint64_t seen_end(uint64_t a) {
    for (int i = 0; i < n_seen_maps; i++)
        if (seen_maps[i].s <= a && a < seen_maps[i].e) return seen_maps[i].e;
    return 0;
}

struct hidden_ctx {
    struct dump_ctx *d;
    int devnull;
};

static int dump_hidden(const struct map *m, void *arg) {
    struct hidden_ctx *h = arg;
    if (!(m->prot & PROT_READ) || !(m->prot & PROT_WRITE) || (m->prot & PROT_EXEC) || m->name[0]) return 0;
    uint64_t p = m->start;
    while (p < m->end) {
        uint64_t e = seen_end(p);
        if (e) {
            p = e;
            continue;
        }
        uint64_t run = p;
        while (run < m->end && !seen_end(run) && __real_write(h->devnull, (const void *)run, 1) == 1) run += 4096;
        if (run > p) {
            struct map part = {.start = p, .end = run, .prot = m->prot};
            dump_map(&part, h->d);
            p = run;
        } else {
            p += 4096;
        }
    }
    return 0;
}

static void dump_memory(struct dump_ctx *d) {
    n_seen_maps = 0;
    uint64_t writable = 0;
    read_maps_text();
    for_each_kept_map(note_map, &writable);
    /* A dump this large takes a noticeable time: hcontainer shows a
     * progress bar from the file's size (docs/FORMATS.md §7). */
    if (hc.ctl >= 0 && writable >= (256u << 20)) {
        static char msg[700];
        char *o = put_str(msg, "DUMPING ");
        o = put_u64(o, writable);
        o = put_str(o, " ");
        o = put_str(o, d->path);
        *put_str(o, "\n") = 0;
        ctl_send(msg);
    }
    for_each_kept_map(dump_map, d);
    maps_len = 0;
    struct hidden_ctx h = {d, open("/dev/null", O_WRONLY | O_CLOEXEC)};
    if (h.devnull >= 0 && n_seen_maps < HC_MAX_MAPS) {
        for_each_map_in("/proc/thread-self/maps", dump_hidden, &h);
        close(h.devnull);
    }
}

/* SA_RESTORER: musl installs its own restorer; the destination's sigaction does too. */
#define HC_SA_RESTORER 0x04000000

static uint64_t tv_us(struct timeval t) {
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_usec;
}

static struct timeval us_tv(uint64_t us) {
    return (struct timeval){.tv_sec = (time_t)(us / 1000000u), .tv_usec = (suseconds_t)(us % 1000000u)};
}

static uint64_t set_bits(const sigset_t *set) {
    uint64_t bits = 0;
    for (int s = 1; s <= 64; s++)
        if (sigismember(set, s) == 1) bits |= 1ull << (s - 1);
    return bits;
}

static void bits_set(uint64_t bits, sigset_t *set) {
    sigemptyset(set);
    for (int s = 1; s <= 64; s++)
        if (bits & (1ull << (s - 1))) sigaddset(set, s);
}

static void dump_signals(struct out *o) {
    struct hc_signals h = {0};
    static struct hc_sigaction acts[64];
    sigset_t set;
    sigprocmask(SIG_BLOCK, 0, &set);
    h.blocked = set_bits(&set);
    sigpending(&set);
    h.pending = (uint32_t)set_bits(&set);
    if (hc.signo > 0 && hc.signo <= 32) h.pending &= ~(1u << (hc.signo - 1));
    for (int t = 0; t < 3; t++) {
        struct itimerval it;
        if (getitimer(t, &it) == 0) {
            h.timers[t][0] = tv_us(it.it_interval);
            h.timers[t][1] = tv_us(it.it_value);
        }
    }
    for (int s = 1; s <= 64; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || s == hc.signo || sigaction(s, 0, &sa)) continue;
        if (sa.sa_handler == SIG_DFL) continue;
        acts[h.count++] = (struct hc_sigaction){
            .signo = (uint32_t)s,
            .flags = (uint32_t)sa.sa_flags & ~(uint32_t)HC_SA_RESTORER,
            .handler = (uint64_t)(uintptr_t)sa.sa_handler,
            .mask = set_bits(&sa.sa_mask),
        };
    }
    /* The alternate signal stack the kernel knows: its memory travels with
     * the rest, its registration is made again. */
    stack_t ss;
    struct hc_altstack alt = {0};
    if (sigaltstack(0, &ss) == 0 && !(ss.ss_flags & SS_DISABLE))
        alt = (struct hc_altstack){(uint64_t)(uintptr_t)ss.ss_sp, (uint64_t)ss.ss_size};
    out_record(o, HC_REC_SIGNALS, sizeof h + h.count * sizeof acts[0] + sizeof alt);
    out_bytes(o, &h, sizeof h);
    out_bytes(o, acts, h.count * sizeof acts[0]);
    out_bytes(o, &alt, sizeof alt);
}

/* Dispositions now; the mask and timers when the program resumes (a copy:
 * the snapshot is unmapped by then). */
static struct hc_signals restored_signals;
static int have_restored_signals;

/* ---- CPU time: the program's CPU clocks (clock, clock_gettime of the
 * process's or main thread's CPU clock, getrusage, times) count the time
 * of the processes it ran in before, so a duration measured across a
 * migration is not negative. hld links with --wrap for each. ---- */

extern int __real_clock_gettime(clockid_t, struct timespec *);
extern int __real___clock_gettime(clockid_t, struct timespec *);
extern int __real_getrusage(int, struct rusage *);
extern clock_t __real_times(struct tms *);

static void add_ns(struct timespec *ts, int64_t ns) {
    int64_t t = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + ns;
    if (t < 0) t = 0;
    ts->tv_sec = t / 1000000000;
    ts->tv_nsec = t % 1000000000;
}

static void add_us(struct timeval *tv, int64_t ns) {
    int64_t t = (int64_t)tv->tv_sec * 1000000 + tv->tv_usec + ns / 1000;
    if (t < 0) t = 0;
    tv->tv_sec = t / 1000000;
    tv->tv_usec = t % 1000000;
}

static int64_t cpu_offset(clockid_t c) {
    if (c == CLOCK_PROCESS_CPUTIME_ID) return hc.cpu_user_off + hc.cpu_sys_off;
    /* Only the main thread migrates: another's clock is its own. */
    if (c == CLOCK_THREAD_CPUTIME_ID && hc.main_tp == (uint64_t)__builtin_thread_pointer())
        return hc.cpu_user_off + hc.cpu_sys_off;
    return 0;
}

int __wrap_clock_gettime(clockid_t c, struct timespec *ts) {
    int r = __real_clock_gettime(c, ts);
    int64_t off = r == 0 ? cpu_offset(c) : 0;
    if (off) add_ns(ts, off);
    return r;
}

/* musl's own callers (clock()) use the internal name. */
int __wrap___clock_gettime(clockid_t c, struct timespec *ts) {
    int r = __real___clock_gettime(c, ts);
    int64_t off = r == 0 ? cpu_offset(c) : 0;
    if (off) add_ns(ts, off);
    return r;
}

int __wrap_getrusage(int who, struct rusage *ru) {
    int r = __real_getrusage(who, ru);
    if (r == 0 && who == RUSAGE_SELF) {
        add_us(&ru->ru_utime, hc.cpu_user_off);
        add_us(&ru->ru_stime, hc.cpu_sys_off);
    }
    return r;
}

/* The program's own times from getrusage's, in every process: ticks
 * rounded from the kernel's and from an offset apart could step back. */
clock_t __wrap_times(struct tms *t) {
    clock_t r = __real_times(t);
    struct rusage ru;
    if (t && r != (clock_t)-1 && __wrap_getrusage(RUSAGE_SELF, &ru) == 0) {
        long hz = sysconf(_SC_CLK_TCK);
        t->tms_utime = (clock_t)(ru.ru_utime.tv_sec * hz + ru.ru_utime.tv_usec * hz / 1000000);
        t->tms_stime = (clock_t)(ru.ru_stime.tv_sec * hz + ru.ru_stime.tv_usec * hz / 1000000);
    }
    return r;
}

/* A signed number, in decimal, at o. */
static char *put_i64(char *o, int64_t v) {
    if (v < 0) *o++ = '-';
    return put_u64(o, v < 0 ? (uint64_t)-v : (uint64_t)v);
}

/* The process's oom_score_adj (-1000..1000), or 1001 if unknown. */
static int read_oom_score_adj(void) {
    char buf[16];
    int fd = open("/proc/self/oom_score_adj", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 1001;
    ssize_t n = __real_read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 1001;
    buf[n] = 0;
    int neg = buf[0] == '-';
    return (neg ? -1 : 1) * (int)parse_u64(buf + neg);
}

/* How the kernel schedules and treats the process (struct hc_process). What
 * the source cannot read (qemu-user answers some prctl options EINVAL) is
 * left unknown, and the destination keeps its own. */
static void read_attrs(struct hc_process *p) {
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (nice != -1 || !errno) {
        p->nice = nice;
        p->attrs_known |= HC_ATTR_NICE;
    }
    /* musl's sched_getscheduler is a stub (ENOSYS): the system call. */
    long policy = syscall(SYS_sched_getscheduler, 0);
    struct sched_param sp = {0};
    if (policy >= 0 && syscall(SYS_sched_getparam, 0, &sp) == 0) {
        p->sched_policy = (uint32_t)policy;
        p->sched_priority = (uint32_t)sp.sched_priority;
        p->attrs_known |= HC_ATTR_SCHED;
    }
    int v = 0;
    if (prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0) == 0) {
        p->pdeathsig = v;
        p->attrs_known |= HC_ATTR_PDEATHSIG;
    }
    int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    if (d >= 0) {
        p->dumpable = (uint32_t)d;
        p->attrs_known |= HC_ATTR_DUMPABLE;
    }
    v = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0) == 0) {
        p->subreaper = v != 0;
        p->attrs_known |= HC_ATTR_SUBREAPER;
    }
    int oom = read_oom_score_adj();
    if (oom <= 1000) {
        p->oom_score_adj = oom;
        p->attrs_known |= HC_ATTR_OOM;
    }
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (slack >= 0) {
        p->timerslack_ns = (uint64_t)slack;
        p->attrs_known |= HC_ATTR_TIMERSLACK;
    }
    if (syscall(SYS_sched_getaffinity, 0, sizeof p->affinity, p->affinity) > 0) p->attrs_known |= HC_ATTR_AFFINITY;
    pid_t sid = getsid(0);
    if (sid > 0) {
        p->session_leader = sid == getpid();
        p->attrs_known |= HC_ATTR_SESSION;
    }
}

/* Fails the restore with WHY, signed number V, then HINT. */
static void __attribute__((noreturn)) restore_fail_signed(const char *why, int64_t v, const char *hint) {
    static char msg[200];
    char *o = put_str(msg, why);
    o = put_i64(o, v);
    put_str(o, hint);
    restore_fail(msg, 0);
}

/* Whether the source had attribute `bit` (read_attrs) and this process has
 * it otherwise, or cannot tell (`same`: the two agree). */
static int attr_differs(const struct hc_process *want, const struct hc_process *now, uint32_t bit, int same) {
    return (want->attrs_known & bit) && !((now->attrs_known & bit) && same);
}

/* Sets the attributes read_attrs read that need hcontainer's rights (a
 * nice value or policy above hcontainer's, a lower oom_score_adj), before
 * restore_credentials gives them up. Failing where the destination would
 * run with other rights or priority than the source fails the restore. */
static void restore_attrs(const struct hc_process *c) {
    struct hc_process now = {0};
    read_attrs(&now);
    uint32_t k = c->attrs_known;
    /* A daemon that left its terminal's session: the destination, started
     * in hcontainer's, leaves it too (the terminal's Ctrl-C reached it). */
    if (c->session_leader && attr_differs(c, &now, HC_ATTR_SESSION, now.session_leader) && setsid() < 0)
        restore_fail("cannot make the program a session leader again (it had called setsid)", 0);
    if (attr_differs(c, &now, HC_ATTR_SCHED,
                     now.sched_policy == c->sched_policy && now.sched_priority == c->sched_priority)) {
        struct sched_param sp = {.sched_priority = (int)c->sched_priority};
        if (syscall(SYS_sched_setscheduler, 0, (int)c->sched_policy, &sp))
            restore_fail_at("cannot give the program the scheduling policy it had (a real-time policy needs "
                            "CAP_SYS_NICE): policy",
                            c->sched_policy, 1);
    }
    if (attr_differs(c, &now, HC_ATTR_NICE, now.nice == c->nice) && setpriority(PRIO_PROCESS, 0, c->nice))
        restore_fail_signed("cannot give the program the nice value it had, ", c->nice,
                            " (a value below hcontainer's needs CAP_SYS_NICE or RLIMIT_NICE)");
    if (attr_differs(c, &now, HC_ATTR_OOM, now.oom_score_adj == c->oom_score_adj)) {
        char value[24];
        char *o = put_i64(value, c->oom_score_adj);
        *o++ = '\n';
        int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        int ok = fd >= 0 && __real_write(fd, value, (size_t)(o - value)) == o - value;
        if (fd >= 0) close(fd);
        if (!ok)
            restore_fail_signed("cannot give the program the oom_score_adj it had, ", c->oom_score_adj,
                                " (a value below hcontainer's needs CAP_SYS_RESOURCE)");
    }
    if (k & HC_ATTR_TIMERSLACK && c->timerslack_ns) prctl(PR_SET_TIMERSLACK, (unsigned long)c->timerslack_ns, 0, 0, 0);
    /* qemu-user (7.2) refuses PR_SET_CHILD_SUBREAPER to its guest, as it
     * would the program itself there: not a reason to refuse the ISA. */
    if (k & HC_ATTR_SUBREAPER && c->subreaper) prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    /* Another machine may not have the CPUs: the kernel takes the ones it
     * has, and with none of them (EINVAL) the program runs on any. */
    if (k & HC_ATTR_AFFINITY) syscall(SYS_sched_setaffinity, 0, sizeof c->affinity, c->affinity);
}

/* The attributes a change of user clears (the kernel resets the parent-death
 * signal and dumpability then): set after restore_credentials. The parent
 * is now the hcontainer that supervises the program, which lives as long as
 * it does. */
static void restore_attrs_after_credentials(const struct hc_process *c) {
    uint32_t k = c->attrs_known;
    int v = 0;
    if (k & HC_ATTR_PDEATHSIG && (prctl(PR_GET_PDEATHSIG, &v, 0, 0, 0) || v != c->pdeathsig) &&
        prctl(PR_SET_PDEATHSIG, (unsigned long)c->pdeathsig, 0, 0, 0))
        restore_fail_at("cannot set the program's parent-death signal (PR_SET_PDEATHSIG) again: signal",
                        (uint64_t)c->pdeathsig, 1);
    /* 2 (suid_dumpable) is the kernel's to give, not a program's. */
    if (k & HC_ATTR_DUMPABLE && c->dumpable <= 1 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != (int)c->dumpable &&
        prctl(PR_SET_DUMPABLE, (unsigned long)c->dumpable, 0, 0, 0))
        restore_fail_at("cannot set the program's dumpable flag (PR_SET_DUMPABLE) again:", c->dumpable, 1);
}

/* The CPU time the program has used, this process's and before. */
static void cpu_used(uint64_t *user_ns, uint64_t *sys_ns) {
    struct rusage ru;
    if (__wrap_getrusage(RUSAGE_SELF, &ru)) ru = (struct rusage){0};
    *user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000 + (uint64_t)ru.ru_utime.tv_usec * 1000;
    *sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000 + (uint64_t)ru.ru_stime.tv_usec * 1000;
}

/* The locale and resource limits the source had, set again (named
 * locales load as they did there; the per-thread one is a pointer into
 * migrated memory). */
static void restore_process(const struct hc_process *loc) {
    for (int c = 0; c < 6; c++) {
        char name[sizeof loc->names[c] + 1];
        memcpy(name, loc->names[c], sizeof loc->names[c]);
        name[sizeof loc->names[c]] = 0;
        if (name[0] && !setlocale(c, name)) restore_fail_path("cannot set the locale the program had", name);
    }
    if (loc->thread) uselocale((locale_t)(uintptr_t)loc->thread);
    hc.creds = loc;
    /* CPU time goes on from the source's. */
    uint64_t user, sys;
    cpu_used(&user, &sys);
    hc.cpu_user_off = (int64_t)(loc->cpu_user_ns - user);
    hc.cpu_sys_off = (int64_t)(loc->cpu_sys_ns - sys);
    if (loc->name[0]) {
        char name[sizeof loc->name + 1] = {0};
        memcpy(name, loc->name, sizeof loc->name);
        prctl(PR_SET_NAME, name);
    }
    for (int r = 0; r < 16; r++) {
        struct rlimit now, want = {(rlim_t)loc->rlimits[r][0], (rlim_t)loc->rlimits[r][1]};
        if (!want.rlim_cur && !want.rlim_max) continue;
        if (getrlimit(r, &now) == 0 && now.rlim_cur == want.rlim_cur && now.rlim_max == want.rlim_max) continue;
        if (setrlimit(r, &want)) restore_fail("cannot set a resource limit as the program had it: resource", (uint64_t)r);
    }
}

static void restore_signals(const struct hc_signals *h) {
    const struct hc_sigaction *a = (const void *)(h + 1);
    const struct hc_altstack *alt = (const void *)(a + h->count);
    if (alt->size) {
        stack_t ss = {.ss_sp = (void *)(uintptr_t)alt->sp, .ss_size = (size_t)alt->size};
        if (sigaltstack(&ss, 0)) restore_fail("cannot restore the alternate signal stack at", alt->sp);
    }
    for (uint32_t i = 0; i < h->count; i++) {
        if ((int)a[i].signo == hc.signo) continue;
        struct sigaction sa = {0};
        sa.sa_handler = (void (*)(int))(uintptr_t)a[i].handler;
        sa.sa_flags = (int)a[i].flags;
        bits_set(a[i].mask, &sa.sa_mask);
        if (sigaction((int)a[i].signo, &sa, 0)) restore_fail_fd("cannot restore the disposition of signal", (int)a[i].signo);
    }
    restored_signals = *h;
    have_restored_signals = 1;
}

static void resume_signals(void) {
    const struct hc_signals *h = &restored_signals;
    if (!have_restored_signals) return;
    have_restored_signals = 0;
    sigset_t set;
    bits_set(h->blocked, &set);
    if (hc.signo > 0) sigdelset(&set, hc.signo);
    sigprocmask(SIG_SETMASK, &set, 0);
    /* Still blocked, so they wait as they did in the source. */
    for (int sig = 1; sig <= 32; sig++)
        if (h->pending & (1u << (sig - 1))) raise(sig);
    for (int t = 0; t < 3; t++) {
        if (!h->timers[t][1]) continue;
        struct itimerval it = {.it_interval = us_tv(h->timers[t][0]), .it_value = us_tv(h->timers[t][1])};
        setitimer(t, &it, 0);
    }
}

/* The TLS segment's size and alignment, from the program headers. */
static void tls_segment(uint64_t *memsz, uint64_t *align) {
    *memsz = 0;
    *align = 1;
    Elf64_Phdr *ph = (Elf64_Phdr *)getauxval(AT_PHDR);
    size_t n = getauxval(AT_PHNUM);
    for (size_t i = 0; ph && i < n; i++)
        if (ph[i].p_type == PT_TLS) {
            *memsz = ph[i].p_memsz;
            *align = ph[i].p_align ? ph[i].p_align : 1;
        }
}

static void dump_tls(struct out *o) {
    uint64_t memsz, align;
    tls_segment(&memsz, &align);
    uint64_t addr = (uint64_t)&__hc_tls_anchor;
    out_record(o, HC_REC_TLS, 16 + memsz);
    out_bytes(o, &addr, 8);
    out_bytes(o, &memsz, 8);
    out_bytes(o, (void *)addr, memsz);
    out_pad(o, memsz);
}

/* Appends " listen tcp ADDR:PORT" to a listening TCP socket's description
 * (`socket:[inode]`), from which a checkpoint's restore creates it anew;
 * returns the new length. */
static size_t describe_socket(int fd, char *path, size_t len, size_t cap) {
    int v = 0, type = 0, dom = 0;
    socklen_t l = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l) || !v) return len;
    l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM) return len;
    l = sizeof dom;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) || (dom != AF_INET && dom != AF_INET6)) return len;
    struct sockaddr_storage ss;
    l = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &l)) return len;
    char buf[96], *o = put_str(buf, " listen tcp ");
    unsigned port;
    if (dom == AF_INET) {
        struct sockaddr_in *in = (void *)&ss;
        if (!inet_ntop(AF_INET, &in->sin_addr, o, 64)) return len;
        o += hc_strlen(o);
        port = ntohs(in->sin_port);
    } else {
        struct sockaddr_in6 *in = (void *)&ss;
        *o++ = '[';
        if (!inet_ntop(AF_INET6, &in->sin6_addr, o, 64)) return len;
        o += hc_strlen(o);
        *o++ = ']';
        port = ntohs(in->sin6_port);
    }
    *o++ = ':';
    o = put_u64(o, port);
    size_t n = (size_t)(o - buf);
    if (len + n > cap) return len;
    memcpy(path + len, buf, n);
    return len + n;
}

/* Calls fn(fd, arg) for each of the program's open descriptors (not this
 * walk's own, not the control connection, not the spare dump file) until
 * it returns nonzero;
 * returns that, or 0. */
static int for_each_fd(int (*fn)(int fd, void *arg), void *arg) {
    static char dents[4096];
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return 0;
    int rc = 0;
    long n;
    while (!rc && (n = syscall(SYS_getdents64, dfd, dents, sizeof dents)) > 0) {
        for (long off = 0; off < n && !rc;) {
            unsigned short reclen = *(unsigned short *)(dents + off + 16);
            const char *name = dents + off + 19;
            off += reclen;
            if (name[0] < '0' || name[0] > '9') continue;
            int fd = (int)parse_u64(name);
            if (fd != dfd && fd != hc.ctl && fd != hc.spare_fd) rc = fn(fd, arg);
        }
    }
    close(dfd);
    return rc;
}

/* What descriptor fd refers to (readlink of /proc/self/fd/N), its length. */
static ssize_t fd_target(int fd, char *buf, size_t cap) {
    char link[40];
    *put_u64(put_str(link, "/proc/self/fd/"), (uint64_t)fd) = 0;
    return readlink(link, buf, cap);
}

struct kernel_object {
    char *msg;
    size_t cap;
};

/* A descriptor of a kernel object no path reopens (eventfd, timerfd,
 * signalfd, epoll, inotify: `anon_inode:[...]`): its state lives in the
 * kernel, so the dump is refused, naming it, and the program goes on. */
static int note_kernel_object(int fd, void *arg) {
    struct kernel_object *k = arg;
    char target[128];
    ssize_t tl = fd_target(fd, target, sizeof target - 1);
    if (tl < 11 || strncmp(target, "anon_inode:", 11)) return 0;
    target[tl] = 0;
    if (hc_strlen(target) + 120 > k->cap) return 0;
    char *o = put_str(k->msg, "DUMPFAIL descriptor ");
    o = put_u64(o, (uint64_t)fd);
    o = put_str(o, " is a kernel object (");
    o = put_str(o, target);
    *put_str(o, ") whose state hcontainer cannot carry yet\n") = 0;
    return 1;
}

/* The locks descriptor fd holds (enum hc_fd_locks), from the "lock:"
 * lines of /proc/self/fdinfo/N (a "->" line is a waiter, not a holder). */
static unsigned fd_locks(int fd) {
    char path[48];
    static char buf[4096];
    *put_u64(put_str(path, "/proc/self/fdinfo/"), (uint64_t)fd) = 0;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return 0;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = __real_read(f, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    close(f);
    buf[len] = 0;
    unsigned locks = 0;
    for (char *l = buf; *l;) {
        char *nl = strchr(l, '\n');
        if (nl) *nl = 0;
        if (!strncmp(l, "lock:", 5) && !strstr(l, "->")) {
            if (strstr(l, " POSIX "))
                locks |= HC_LOCK_PROCESS;
            else if (strstr(l, " FLOCK ") || strstr(l, " OFDLCK ") || strstr(l, " LEASE "))
                locks |= HC_LOCK_OPEN_FILE;
        }
        if (!nl) break;
        l = nl + 1;
    }
    return locks;
}

/* A POSIX record lock (fcntl F_SETLK, lockf) belongs to the process: the
 * destination could take it again only after the source let it go, and
 * another process could take it between. So the dump waits, naming it. */
static int note_process_lock(int fd, void *arg) {
    struct kernel_object *k = arg;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !(fd_locks(fd) & HC_LOCK_PROCESS)) return 0;
    char target[400];
    ssize_t tl = fd_target(fd, target, sizeof target - 1);
    target[tl > 0 ? tl : 0] = 0;
    if (hc_strlen(target) + 160 > k->cap) return 0;
    char *o = put_str(k->msg, "DUMPFAIL descriptor ");
    o = put_u64(o, (uint64_t)fd);
    o = put_str(o, " (");
    o = put_str(o, target);
    *put_str(o, ") holds a POSIX record lock (fcntl, lockf), which belongs to the process and cannot move with it\n") = 0;
    return 1;
}

/* Whether the program has child processes (fork, popen, posix_spawn):
 * they stay the source's children, so after a migration the program's
 * waitpid would find none (ECHILD) and their exit status would be lost.
 * WNOWAIT leaves a finished child for the program to reap. */
static int child_process(char *msg, size_t cap) {
    siginfo_t si = {0};
    if (waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) != 0) return 0;
    if (cap < 200) return 0;
    char *o = put_str(msg, "DUMPFAIL the program has child processes");
    if (si.si_pid > 0) {
        o = put_str(o, " (process ");
        o = put_u64(o, (uint64_t)si.si_pid);
        o = put_str(o, " has ended and is not yet waited for)");
    }
    *put_str(o, ", which would not be its children after a migration\n") = 0;
    return 1;
}

/* Whether the program has a descriptor a dump must wait for (a kernel
 * object, a POSIX record lock); writes the DUMPFAIL line. */
static int fd_that_waits(char *msg, size_t cap) {
    struct kernel_object k = {msg, cap};
    return for_each_fd(note_kernel_object, &k) || for_each_fd(note_process_lock, &k);
}

/* The descriptors a dump lists (static: too large for the stack the
 * migration point runs on). */
static struct {
    struct hc_fd_hdr h;
    char path[512];
} fds[256];

struct fd_walk {
    int skip1, skip2;
    unsigned count;
};

/* Open flags in dumps and snapshots are numbered as x86_64 (and the
 * kernel's generic headers) number them: aarch64 numbers four otherwise,
 * and a directory opened on x86_64 was reopened on aarch64 with O_DIRECT
 * (EINVAL) instead of O_DIRECTORY. */
static const int open_flags_here[4] = {O_DIRECT, O_LARGEFILE, O_DIRECTORY, O_NOFOLLOW};
static const int open_flags_neutral[4] = {040000, 0100000, 0200000, 0400000};

static int open_flags_convert(int f, const int *from, const int *to) {
    int out = f;
    for (int i = 0; i < 4; i++) out &= ~from[i];
    for (int i = 0; i < 4; i++)
        if (f & from[i]) out |= to[i];
    return out;
}

static int note_fd(int fd, void *arg) {
    struct fd_walk *w = arg;
    unsigned n_fds = w->count;
    if (fd == w->skip1 || fd == w->skip2 || n_fds >= 256) return 0;
    struct stat st;
    if (fstat(fd, &st)) return 0;
    /* A file deleted while open cannot be reopened by path either, and a
     * lock the open file holds (flock) goes with that open file only. */
    int unlinked = S_ISREG(st.st_mode) && st.st_nlink == 0;
    unsigned locks = S_ISREG(st.st_mode) ? fd_locks(fd) : 0;
    if ((S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || unlinked || (locks & HC_LOCK_OPEN_FILE)) &&
        n_passed_fds < HC_MAX_PASSED)
        passed_fds[n_passed_fds++] = fd;
    ssize_t pl = fd_target(fd, fds[n_fds].path, sizeof fds[n_fds].path - 1);
    if (pl < 0) pl = 0;
    if (S_ISSOCK(st.st_mode)) pl = describe_socket(fd, fds[n_fds].path, (size_t)pl, sizeof fds[n_fds].path - 1);
    fds[n_fds].h = (struct hc_fd_hdr){
        .fd = fd,
        .flags = open_flags_convert(fcntl(fd, F_GETFL), open_flags_here, open_flags_neutral),
        .fdflags = fcntl(fd, F_GETFD),
        .mode = st.st_mode,
        .offset = lseek(fd, 0, SEEK_CUR),
        .dev = st.st_dev,
        .ino = st.st_ino,
        .path_len = (uint32_t)pl,
        .locks = locks,
    };
    w->count++;
    return 0;
}

/* Whether two descriptors of one regular file share their open file (one
 * is a dup of the other): then they share the offset, and reopening each
 * by path would have their writes overwrite each other's. Moving one's
 * offset and reading the other's tells, without kcmp (which kernels
 * without CHECKPOINT_RESTORE and qemu-user lack). */
static int same_open_file(const struct hc_fd_hdr *a, const struct hc_fd_hdr *b) {
    if (!S_ISREG(a->mode) || !S_ISREG(b->mode) || a->dev != b->dev || a->ino != b->ino || a->flags != b->flags ||
        a->offset != b->offset || a->offset < 0)
        return 0;
    off_t probe = a->offset + 1;
    int shared = lseek(a->fd, probe, SEEK_SET) == probe && lseek(b->fd, 0, SEEK_CUR) == probe;
    lseek(a->fd, a->offset, SEEK_SET);
    return shared;
}

static void dump_fds(struct out *o, int skip1, int skip2) {
    n_passed_fds = 0;
    struct fd_walk w = {skip1, skip2, 0};
    for_each_fd(note_fd, &w);
    unsigned count = w.count;
    for (unsigned i = 1; i < count; i++)
        for (unsigned j = 0; j < i; j++)
            if (!fds[j].h.shares && same_open_file(&fds[i].h, &fds[j].h)) {
                fds[i].h.shares = (uint32_t)fds[j].h.fd + 1;
                break;
            }
    uint64_t len = 8;
    for (unsigned i = 0; i < count; i++) len += sizeof(struct hc_fd_hdr) + ((fds[i].h.path_len + 7) & ~7u);
    out_record(o, HC_REC_FDS, len);
    uint32_t c[2] = {count, 0};
    out_bytes(o, c, 8);
    for (unsigned i = 0; i < count; i++) {
        out_bytes(o, &fds[i].h, sizeof fds[i].h);
        out_bytes(o, fds[i].path, fds[i].h.path_len);
        out_pad(o, fds[i].h.path_len);
    }
}

/* Writes the dump; returns its path in `path` and 0, or -1. */
static int write_dump(struct hc_regs *r, int err, char *path, uint64_t t0) {
    char *p = put_str(path, hc.dir);
    p = put_str(p, "/dump-");
    p = put_u64(p, (uint64_t)getpid());
    p = put_str(p, "-");
    p = put_u64(p, hc.seq++);
    *p = 0;
    struct out *o = &dump_out;
    o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (o->fd < 0 && (errno == EACCES || errno == EPERM) && hc.spare_fd >= 0 && ftruncate(hc.spare_fd, 0) == 0) {
        /* No longer allowed to create it (the program changed its user):
         * the spare, named by its descriptor, which hcontainer and the
         * destination (root until their restore ends) can open (the
         * program itself could not: opening it anew checks its mode). */
        p = put_str(path, "/proc/");
        p = put_u64(p, (uint64_t)getpid());
        p = put_str(p, "/fd/");
        p = put_u64(p, (uint64_t)hc.spare_fd);
        *p = 0;
        o->fd = fcntl(hc.spare_fd, F_DUPFD_CLOEXEC, 0);
        lseek(o->fd, 0, SEEK_SET);
    }
    o->failed = 0;
    o->flushed = 0;
    o->len = 0;
    if (o->fd < 0) return -1;
    out_bytes(o, HC_DUMP_MAGIC, 8);
    uint32_t v[2] = {HC_DUMP_VERSION, HC_ISA};
    out_bytes(o, v, 8);
    out_bytes(o, build_id(), 16);
    out_record(o, HC_REC_REGS, sizeof *r);
    out_bytes(o, r, sizeof *r);
    struct dump_ctx d = {o, r->sp, path};
    dump_memory(&d);
    dump_tls(o);
    dump_fds(o, o->fd, -1);
    static char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    mode_t mask = umask(0);
    umask(mask);
    struct hc_misc misc = {
        .err = err,
        .umask = (uint32_t)mask,
        .cwd_len = (uint32_t)hc_strlen(cwd),
        .argv_start = hc.argv_start,
        .stack_end = hc.stack_end,
        .shadow_base = hc.shadow_base,
        .shadow_size = hc.shadow_size,
        .dump_ns = now_ns() - t0,
    };
    dump_signals(o);
    /* The locale: musl keeps it in its arch-local state, so a restore
     * starts in "C" unless told (a program that chose C.UTF-8 would then
     * count bytes as characters). */
    struct hc_process loc = {0};
    for (int c = 0; c < 6; c++) {
        const char *name = setlocale(c, 0);
        size_t n = name ? hc_strlen(name) : 0;
        if (n < sizeof loc.names[c]) memcpy(loc.names[c], name, n);
    }
    /* The process name, if the program chose one (a destination under
     * qemu-user would otherwise show "qemu-aarch64", a native one its
     * file's name). */
    char name[16] = {0};
    if (!prctl(PR_GET_NAME, name) && strncmp(name, hc.start_name, sizeof name)) memcpy(loc.name, name, sizeof name);
    cpu_used(&loc.cpu_user_ns, &loc.cpu_sys_ns);
    getresuid(&loc.uid[0], &loc.uid[1], &loc.uid[2]);
    getresgid(&loc.gid[0], &loc.gid[1], &loc.gid[2]);
    gid_t groups[32];
    int ng = getgroups(32, groups);
    if (ng < 0) ng = getgroups(0, 0) > 32 ? 32 : 0;
    loc.ngroups = (uint32_t)ng;
    for (int i = 0; i < ng; i++) loc.groups[i] = groups[i];
    loc.no_new_privs = (uint32_t)prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
    read_attrs(&loc);
    locale_t own = uselocale(0);
    loc.thread = own == LC_GLOBAL_LOCALE ? 0 : (uint64_t)(uintptr_t)own;
    /* Resource limits are the kernel's: a program that lowered one (to
     * sandbox itself, or no core files) had the defaults back. */
    for (int r = 0; r < 16; r++) {
        struct rlimit rl;
        if (getrlimit(r, &rl) == 0) {
            loc.rlimits[r][0] = (uint64_t)rl.rlim_cur;
            loc.rlimits[r][1] = (uint64_t)rl.rlim_max;
        }
    }
    uint32_t cwd_padded = (misc.cwd_len + 7) & ~7u;
    out_record(o, HC_REC_MISC, sizeof misc + cwd_padded + sizeof loc);
    out_bytes(o, &misc, sizeof misc);
    out_bytes(o, cwd, misc.cwd_len);
    out_pad(o, misc.cwd_len);
    out_bytes(o, &loc, sizeof loc);
    out_record(o, HC_REC_END, 0);
    out_flush(o);
    int failed = o->failed;
    if (close(o->fd)) failed = 1;
    return failed ? -1 : 0;
}

/* ---- Restore. ---- */

#define HC_SNAPSHOT_ADDR 0x3c0000000000ull

static void finish_restore(void);

static void restore_files(const unsigned char *p, const unsigned char *end) {
    uint32_t count = *(const uint32_t *)p;
    p += 8;
    for (uint32_t i = 0; i < count && p < end; i++) {
        const struct hc_fd_hdr *h = (const void *)p;
        const char *path = (const char *)(h + 1);
        p += sizeof *h + ((h->path_len + 7) & ~7u);
        struct stat st;
        if (h->shares && (int)h->shares - 1 != h->fd) {
            /* A dup of an earlier descriptor (restored first): the same
             * open file again, offset included. */
            if (dup3((int)h->shares - 1, h->fd, (h->fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
                restore_fail_fd("cannot share the open file of descriptor", h->fd);
            continue;
        }
        if (fstat(h->fd, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino) {
            /* Already the same file (inherited from hcontainer, or passed
             * on by it): shares the open file description, offset included. */
            fcntl(h->fd, F_SETFD, h->fdflags & FD_CLOEXEC);
            continue;
        }
        /* What cannot be reopened by path (a pipe, a socket, a terminal that
         * is gone) is taken from this process when it has a descriptor of
         * the same kind there: a program restored into a pipeline writes to
         * that pipeline. */
        int have_same_kind = fstat(h->fd, &st) == 0 && (st.st_mode & S_IFMT) == (h->mode & S_IFMT);
        int fd = -1;
        if (S_ISREG(h->mode) || S_ISDIR(h->mode) || S_ISCHR(h->mode)) {
            char pbuf[520];
            if (h->path_len >= sizeof pbuf) restore_fail_fd("path too long for descriptor", h->fd);
            memcpy(pbuf, path, h->path_len);
            pbuf[h->path_len] = 0;
            int flags = open_flags_convert(h->flags, open_flags_neutral, open_flags_here) &
                        ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY);
            fd = open(pbuf, flags | O_CLOEXEC);
        }
        if (fd < 0 && have_same_kind) continue;
        if (fd < 0 && !S_ISREG(h->mode) && !S_ISDIR(h->mode) && !S_ISCHR(h->mode))
            restore_fail_fd("cannot carry a pipe or socket (restore with one open on the same descriptor, e.g. in a pipeline): descriptor", h->fd);
        if (fd < 0) restore_fail_fd("cannot reopen the file (moved or deleted?) of descriptor", h->fd);
        if (fd != h->fd) {
            if (dup3(fd, h->fd, (h->fdflags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
                restore_fail_fd("cannot place descriptor", h->fd);
            close(fd);
        } else if (!(h->fdflags & FD_CLOEXEC)) {
            fcntl(fd, F_SETFD, 0);
        }
        /* A directory's offset is where its reading stands (musl's DIR
         * buffers in migrated memory, then reads on from the descriptor):
         * without it, readdir listed entries again. */
        if (h->offset >= 0 && (S_ISREG(h->mode) || S_ISDIR(h->mode))) lseek(h->fd, h->offset, SEEK_SET);
    }
}

/* The head of musl's `struct __libc` (src/internal/libc.h, musl 1.2.x): its
 * auxv pointer points into this process's own stack. */
struct musl_libc_head {
    char can_do_threads, threaded, secure;
    volatile signed char need_locks;
    int threads_minus_1;
    size_t *auxv;
};
extern struct musl_libc_head __libc;

/* Moves this process's auxv off its stack, which restore unmaps. */
static void preserve_auxv(void) {
    static size_t copy[128];
    static int done;
    if (done || !__libc.auxv) return;
    size_t n = 0;
    while (n + 2 < sizeof copy / sizeof copy[0] && __libc.auxv[n]) n += 2;
    memcpy(copy, __libc.auxv, n * sizeof(size_t));
    copy[n] = copy[n + 1] = 0;
    /* Entries that point into the old stack: their data moves too. */
    static unsigned char random[16];
    static char strings[2][256];
    for (size_t i = 0; i < n; i += 2) {
        if (copy[i] == AT_RANDOM && copy[i + 1]) {
            memcpy(random, (void *)copy[i + 1], sizeof random);
            copy[i + 1] = (size_t)random;
        } else if ((copy[i] == AT_EXECFN || copy[i] == AT_PLATFORM) && copy[i + 1]) {
            char *dst = strings[copy[i] == AT_EXECFN];
            size_t len = hc_strlen((char *)copy[i + 1]);
            if (len >= sizeof strings[0]) len = sizeof strings[0] - 1;
            memcpy(dst, (void *)copy[i + 1], len);
            dst[len] = 0;
            copy[i + 1] = (size_t)dst;
        }
    }
    __libc.auxv = copy;
    done = 1;
}

/* ---- Memory mapped from a file at restore behaves as anonymous memory. ----
 * Restore maps large regions privately from the dump or snapshot instead of
 * copying them. Two calls see the difference: mremap grows a file mapping
 * with the file's next pages (past its end: SIGBUS on touch; musl's realloc
 * grows large blocks so), and MADV_DONTNEED brings back the file's pages
 * instead of zeros. hld links with --wrap for both: where such a range is
 * still mapped from one of those files, the grown part or the discarded
 * pages become fresh anonymous memory. */
#define HC_MAX_FILE_MAPS 1024
static struct { uint64_t s, e; } file_maps[HC_MAX_FILE_MAPS];
static int n_file_maps, file_maps_full;

/* Whether [s, e) overlaps a mapping the runtime made of a memory file. */
static int runtime_file_map(uint64_t s, uint64_t e) {
    for (int i = 0; i < n_file_maps; i++)
        if (s < file_maps[i].e && file_maps[i].s < e) return 1;
    return 0;
}

/* [s, e) may be mapped from a restore file; moved from [old_s, old_e) if
 * those differ (an entry inside the old range is reused). */
static void note_file_map(uint64_t s, uint64_t e, uint64_t old_s, uint64_t old_e) {
    for (int i = 0; i < n_file_maps && old_s < old_e; i++)
        if (old_s <= file_maps[i].s && file_maps[i].e <= old_e) {
            file_maps[i].s = s;
            file_maps[i].e = e;
            return;
        }
    if (n_file_maps < HC_MAX_FILE_MAPS) {
        file_maps[n_file_maps].s = s;
        file_maps[n_file_maps].e = e;
        n_file_maps++;
    } else {
        file_maps_full = 1;
    }
}

static void note_file(int fd, int which) {
    struct stat st;
    if (fd >= 0 && !fstat(fd, &st)) {
        hc.file_dev[which] = st.st_dev;
        hc.file_ino[which] = st.st_ino;
    }
}

/* Cheap test first: can [s, e) hold pages restore mapped from a file? (The
 * list only grows: /proc/self/maps has the last word.) */
static int may_be_file_mapped(uint64_t s, uint64_t e) {
    if (file_maps_full) return 1;
    for (int i = 0; i < n_file_maps; i++)
        if (file_maps[i].s < e && s < file_maps[i].e) return 1;
    return 0;
}

struct file_pieces {
    uint64_t s, e;
    int n;
    struct { uint64_t s, e; int prot; } piece[16];
};

static int find_file_pieces(const struct map *m, void *arg) {
    struct file_pieces *f = arg;
    int ours = m->ino && ((m->ino == hc.file_ino[0] && m->dev == hc.file_dev[0]) ||
                          (m->ino == hc.file_ino[1] && m->dev == hc.file_dev[1]));
    uint64_t s = m->start > f->s ? m->start : f->s, e = m->end < f->e ? m->end : f->e;
    if (!ours || s >= e) return 0;
    if (f->n == (int)(sizeof f->piece / sizeof f->piece[0])) return 1;
    f->piece[f->n].s = s;
    f->piece[f->n].e = e;
    f->piece[f->n].prot = m->prot;
    f->n++;
    return 0;
}

/* Replaces the pages of [s, e) still mapped from a restore file with zeros;
 * 0, or -1 if they could not all be replaced. */
static int anonymize(uint64_t s, uint64_t e) {
    if (s >= e) return 0;
    for (;;) {
        struct file_pieces f = {.s = s, .e = e};
        int more = for_each_map(find_file_pieces, &f);
        /* Mapped after the walk: mapping changes /proc/self/maps under it. */
        for (int i = 0; i < f.n; i++) {
            void *p = (void *)f.piece[i].s;
            if (mmap(p, f.piece[i].e - f.piece[i].s, f.piece[i].prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p)
                return -1;
        }
        if (more <= 0) return more;
    }
}

void *__real___mremap(void *old, size_t old_len, size_t new_len, int flags, ...);
int __real___madvise(void *addr, size_t len, int advice);

void *__wrap___mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    void *to = flags & MREMAP_FIXED ? va_arg(ap, void *) : 0;
    va_end(ap);
    void *m = __real___mremap(old, old_len, new_len, flags, to);
    uint64_t o = (uint64_t)old, n = (uint64_t)m, was = (old_len + 4095) & ~(uint64_t)4095;
    if (m == MAP_FAILED || !may_be_file_mapped(o, o + old_len)) return m;
    if (new_len > old_len && anonymize(n + was, n + new_len)) {
        /* Better no block than one that faults: undo the growth. */
        __real___mremap(m, new_len, old_len, 0);
        errno = ENOMEM;
        return MAP_FAILED;
    }
    /* What stayed of it moved with it (qemu moves even shrinking blocks). */
    if (n != o) note_file_map(n, n + (new_len < was ? new_len : was), o, o + was);
    return m;
}

void *__wrap_mremap(void *old, size_t old_len, size_t new_len, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    void *to = flags & MREMAP_FIXED ? va_arg(ap, void *) : 0;
    va_end(ap);
    return __wrap___mremap(old, old_len, new_len, flags, to);
}

int __wrap___madvise(void *addr, size_t len, int advice) {
    uint64_t a = (uint64_t)addr;
    uint64_t e = (a + len + 4095) & ~(uint64_t)4095;
    if (advice == MADV_DONTNEED && a % 4096 == 0 && may_be_file_mapped(a, e) && anonymize(a, e)) return -1;
    return __real___madvise(addr, len, advice);
}

int __wrap_madvise(void *addr, size_t len, int advice) {
    return __wrap___madvise(addr, len, advice);
}

/* A file the source had mapped, mapped again from the file (its shared
 * mappings keep writing to it). */
static void restore_file_map(const struct hc_region_hdr *h, const unsigned char *data) {
    static char path[4096];
    uint64_t off = *(const uint64_t *)data;
    uint32_t flags = *(const uint32_t *)(data + 8);
    if (h->data_len < 16 || h->data_len - 16 >= sizeof path) restore_fail("snapshot file mapping damaged", h->addr);
    memcpy(path, data + 16, h->data_len - 16);
    path[h->data_len - 16] = 0;
    int shared = flags & 1, writes = shared && (h->prot & PROT_WRITE);
    int fd = open(path, (writes ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) restore_fail_path("cannot open a file the program had mapped", path);
    void *m = mmap((void *)h->addr, h->map_len, (int)h->prot, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE,
                   fd, (off_t)off);
    close(fd);
    if (m == MAP_FAILED || (uint64_t)m != h->addr) restore_fail_path("cannot map again a file the program had mapped", path);
}

/* Shared memory of a file the program still has open: that descriptor came
 * with it (SCM_RIGHTS), so the mapping is made again from it. */
static void restore_shared_fd_map(const struct hc_region_hdr *h, const unsigned char *data) {
    if (h->data_len < 24) restore_fail("snapshot shared mapping damaged", h->addr);
    const uint64_t *b = (const uint64_t *)data;
    struct fd_of f = {b[1], b[2], -1};
    if (!for_each_fd(note_fd_of, &f)) restore_fail("no descriptor of the file behind the shared mapping at", h->addr);
    void *m = mmap((void *)h->addr, h->map_len, (int)h->prot, MAP_SHARED | MAP_FIXED_NOREPLACE, f.fd, (off_t)b[0]);
    if (m == MAP_FAILED || (uint64_t)m != h->addr) restore_fail("cannot map again the shared memory at", h->addr);
}

static void restore_region(const struct hc_region_hdr *h, const unsigned char *end) {
    /* Inline data is in the snapshot; other data in the memory file. */
    const unsigned char *data = (const unsigned char *)(h + 1) + h->data_skip, *file = hc.snap;
    int fd = hc.snap_fd;
    if (h->source == HC_SOURCE_MEMORY) {
        uint64_t at = *(const uint64_t *)(h + 1);
        if (!hc.mem) restore_fail("snapshot region refers to a memory file it does not name", h->addr);
        if (at > hc.mem_len || h->data_len > hc.mem_len - at)
            restore_fail("region data beyond the end of the memory file (the dump changed?)", h->addr);
        data = hc.mem + at;
        file = hc.mem;
        fd = hc.mem_fd;
    } else if (h->source != HC_SOURCE_INLINE || h->data_skip > (uint64_t)(end - (const unsigned char *)(h + 1)) ||
               h->data_len > (uint64_t)(end - data)) {
        restore_fail("snapshot region record damaged", h->addr);
    }
    uint64_t ds = (uint64_t)__hc_data_start, de = (uint64_t)__hc_data_end;
    if (h->kind == HC_REGION_FILE) {
        restore_file_map(h, data);
        return;
    }
    if (h->kind == HC_REGION_SHARED_FD) {
        restore_shared_fd_map(h, data);
        return;
    }
    if (h->kind == HC_REGION_IMAGE) {
        if (h->addr < ds || h->addr + h->map_len > de)
            restore_fail("image region outside this binary's data", h->addr);
        memcpy((void *)h->addr, data, h->data_len);
        return;
    }
    /* A reservation stays one: no access, no memory committed. */
    int prot = h->prot || h->data_len ? (int)h->prot | PROT_WRITE | PROT_READ : PROT_NONE;
    int shared = h->kind == HC_REGION_SHARED;
    int flags = (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE |
                (prot == PROT_NONE ? MAP_NORESERVE : 0);
    void *m = mmap((void *)h->addr, h->map_len, prot, flags, -1, 0);
    if (m == MAP_FAILED || (uint64_t)m != h->addr) {
        if (m != MAP_FAILED) munmap(m, h->map_len);
        /* Reserved already (qemu-user keeps a guard below the guest's
         * stack, which an aarch64 source's dump names): nothing is lost. */
        if (prot == PROT_NONE) return;
        restore_fail("address range in use in the destination, cannot map region at", h->addr);
    }
    /* Page-aligned data in the file is mapped from it (copy on write, read
     * on first touch) instead of copied; the tail is copied. */
    uint64_t off = (uint64_t)(data - file), whole = h->data_len & ~(uint64_t)4095;
    /* (Not shared memory: a private file mapping is nobody else's.) */
    if (!shared && fd >= 0 && off % 4096 == 0 && whole >= HC_MAP_THRESHOLD &&
        mmap(m, whole, prot, MAP_PRIVATE | MAP_FIXED, fd, (off_t)off) == m) {
        note_file_map((uint64_t)m, (uint64_t)m + whole, 0, 0);
        memcpy((char *)m + whole, data + whole, h->data_len - whole);
    } else {
        memcpy(m, data, h->data_len);
    }
    if (h->kind == HC_REGION_SHADOW) {
        hc.shadow_base = h->addr;
        hc.shadow_size = h->map_len;
        mprotect((char *)m + h->map_len - 4096, 4096, PROT_NONE);
    } else if ((int)h->prot != prot) {
        mprotect(m, h->map_len, (int)h->prot);
    }
}

/* Switches to a new stack and calls fn(arg) there; never returns (asm). */
void hc_switch_stack(void *top, void (*fn)(void *), void *arg) __attribute__((noreturn));

static int find_sp_map(const struct map *m, void *arg) {
    uint64_t *a = arg; /* in: an address; out: its mapping [start, end) */
    if (m->start <= a[0] && a[0] < m->end) {
        a[1] = m->start;
        a[2] = m->end;
        return 1;
    }
    return 0;
}

/* find_sp_map for two addresses at once: a[0] and a[3]. */
static int find_two_maps(const struct map *m, void *arg) {
    uint64_t *a = arg;
    find_sp_map(m, a);
    find_sp_map(m, a + 3);
    return a[2] && a[5];
}

static int overlaps_snapshot(uint64_t s, uint64_t e);
static int in_one_region(uint64_t s, uint64_t e);

/* ---- Thread-local storage at one address on every ISA. musl puts the main
 * thread's TLS block where its ISA's ABI wants it from the thread pointer —
 * below it on x86_64, above it on aarch64 — in a static buffer (arch-local)
 * or an mmap, so the block's address differed between the variants and
 * between processes, and a thread-local's address kept in memory
 * (`p->slot = &counter`) pointed beside it after a migration. So the
 * runtime moves the main thread's TLS first thing into an area of program
 * memory, which a restore maps at the same address, with room on both
 * sides of the block for any ISA's thread descriptor and dtv; the restored
 * process lays its own out around the same block. ---- */

void *__copy_tls(unsigned char *mem); /* musl (hidden): lays TLS out in mem, returns the descriptor */
int __init_tp(void *td);              /* musl (hidden): makes td the thread's descriptor */

/* Room on each side of the block: more than either ISA's descriptor, gap
 * and dtv take. */
#define HC_TLS_ROOM 4096
static const uint64_t tls_anchor_initial = 0x6863746c73;

#if defined(__x86_64__)
/* The stack protector's canary is in the thread descriptor (%fs:0x28). */
static void tls_keep_canary(const void *old_tp, void *td) {
    memcpy((char *)td + 0x28, (const char *)old_tp + 0x28, 8);
}
#else
/* aarch64's is a global (__stack_chk_guard). */
static void tls_keep_canary(const void *old_tp, void *td) {
    (void)old_tp;
    (void)td;
}
#endif

/* The block's address under the thread pointer as it is now. Not inlined:
 * compiled code reads the thread pointer once per function, so a caller
 * that moved the block would otherwise still write to the old one. */
static __attribute__((noinline)) void *tls_block(void) {
    return (void *)&__hc_tls_anchor;
}

/* The thread pointer now (not inlined: see tls_block). */
static __attribute__((noinline)) uint64_t current_tp(void) {
    return (uint64_t)__builtin_thread_pointer();
}

/* Bytes __copy_tls may write from mem, with room to spare. */
static uint64_t tls_span(uint64_t memsz) {
    return 2 * HC_TLS_ROOM + ((memsz + 4095) & ~(uint64_t)4095);
}

/* Where __copy_tls(mem) puts the block, as an offset from an mem aligned
 * to the block's alignment (at most a page): laid out once on scratch
 * memory, where the anchor's initial value marks the block's start. */
static int64_t tls_block_offset(uint64_t memsz) {
    uint64_t span = tls_span(memsz);
    unsigned char *s = mmap(0, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) return -1;
    __copy_tls(s);
    int64_t off = -1;
    for (uint64_t i = 0; i + 8 <= span; i += 8)
        if (!memcmp(s + i, &tls_anchor_initial, 8)) {
            off = (int64_t)i;
            break;
        }
    munmap(s, span);
    return off < HC_TLS_ROOM ? off : -1;
}

/* Lays this ISA's TLS out around a block at `block` (its initial image:
 * the caller copies the contents) and makes it the thread's. */
static void tls_install(uint64_t block, int64_t off) {
    const void *old_tp = __builtin_thread_pointer();
    void *td = __copy_tls((unsigned char *)(block - (uint64_t)off));
    tls_keep_canary(old_tp, td);
    if (__init_tp(td) < 0) {
        say("cannot set the thread pointer");
        _exit(70);
    }
    hc.main_tp = current_tp();
}

/* The start-up move (not in a restoring process: its regions may need any
 * address, and restore places the block where the source had it). A
 * segment aligned beyond a page keeps musl's placement. */
static void tls_move_to_program_memory(void) {
    uint64_t memsz, align;
    tls_segment(&memsz, &align);
    if (!memsz || align > 4096) return;
    int64_t off = tls_block_offset(memsz);
    if (off < 0) return;
    uint64_t span = tls_span(memsz) + HC_TLS_ROOM;
    unsigned char *a = mmap(0, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED) return;
    /* mem = block - off stays aligned: the block is as far past the page
     * boundary at a + HC_TLS_ROOM as off is past an aligned address. */
    uint64_t block = (uint64_t)a + HC_TLS_ROOM + ((uint64_t)off & (align - 1));
    /* The old block stays mapped (musl's buffer or mmap): copy from it. */
    const unsigned char *old = (const unsigned char *)&__hc_tls_anchor;
    tls_install(block, off);
    memcpy(tls_block(), old, memsz);
}

/* A restore puts its block where the source's was (the snapshot's TLS
 * record names it), inside the area restored with the other regions. A
 * source that kept musl's placement (a block in its arch-local buffer)
 * leaves this process's own. */
static void tls_restore_at(uint64_t block) {
    uint64_t memsz, align;
    tls_segment(&memsz, &align);
    if (block == (uint64_t)&__hc_tls_anchor || align > 4096) return;
    if (block >= (uint64_t)__hc_image_start && block < image_end()) return;
    int64_t off = tls_block_offset(memsz);
    if (off < 0) restore_fail("cannot lay out thread-local storage", block);
    /* In a region of the snapshot, as it always is; else in a mapping
     * (reading /proc/self/maps costs qemu-user 1.5 ms). */
    uint64_t area[3] = {block - (uint64_t)off, 0, 0};
    if (!in_one_region(area[0], block + memsz + HC_TLS_ROOM)) {
        for_each_map(find_sp_map, area);
        if (!area[1] || area[2] < block + memsz + HC_TLS_ROOM)
            restore_fail("the snapshot's thread-local storage is in no restored region", block);
    }
    tls_install(block, off);
}

static void restore_on_new_stack(void *old_stack);

/* A migration's snapshot leaves memory in the dump it was made from (the
 * MEMORY record, first after the header): map that file read-only above the
 * snapshot, where no region goes, and check it is a dump of this build. */
static void map_memory_file(void) {
    const unsigned char *p = hc.snap + 32, *end = hc.snap + hc.snap_len;
    if (p + 16 > end || *(const uint32_t *)p != HC_REC_MEMORY) return;
    uint64_t len = *(const uint64_t *)(p + 8);
    if (len < 8 || len > (uint64_t)(end - p - 16)) restore_fail("snapshot MEMORY record damaged", 0);
    uint32_t n = *(const uint32_t *)(p + 16);
    static char path[4096];
    if (n > len - 8 || n >= sizeof path) restore_fail("snapshot MEMORY record damaged", 0);
    memcpy(path, p + 24, n);
    path[n] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) restore_fail_path("cannot open the dump that holds the snapshot's memory (a migration's snapshot needs the dump it was made from)", path);
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 32) restore_fail_path("the dump that holds the snapshot's memory is empty", path);
    hc.mem_len = (size_t)st.st_size;
    uint64_t hint = (HC_SNAPSHOT_ADDR + hc.snap_len + (1ull << 30)) & ~((1ull << 30) - 1);
    void *m = mmap((void *)hint, hc.mem_len, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
    if (m == MAP_FAILED) m = mmap(0, hc.mem_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) restore_fail_path("cannot map the dump that holds the snapshot's memory", path);
    hc.mem = m;
    if (overlaps_snapshot((uint64_t)m, (uint64_t)m + hc.mem_len))
        restore_fail("no room to map the dump that holds the snapshot's memory", (uint64_t)m);
    if (memcmp(hc.mem, HC_DUMP_MAGIC, 8) || memcmp(hc.mem + 16, build_id(), 16))
        restore_fail_path("the snapshot's memory file is not a dump of this build", path);
    hc.mem_fd = fcntl(fd, F_DUPFD_CLOEXEC, 950);
    note_file(hc.mem_fd, 1);
    close(fd);
}

static void restore(const char *path) {
    clock_gettime(CLOCK_MONOTONIC, &hc.restore_t0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) restore_fail("cannot open snapshot", 0);
    struct stat st;
    if (fstat(fd, &st)) restore_fail("cannot stat snapshot", 0);
    hc.snap_len = (size_t)st.st_size;
    /* Far from where either ISA's kernel (or qemu) puts a program's own
     * mappings, so the snapshot does not sit where its regions must go. */
    void *m = mmap((void *)HC_SNAPSHOT_ADDR, hc.snap_len, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
    if (m == MAP_FAILED) m = mmap(0, hc.snap_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) restore_fail("cannot map snapshot", 0);
    /* Kept for mapping regions, out of the way of the program's own
     * descriptors, which restore_files puts back at their numbers. */
    hc.snap_fd = fcntl(fd, F_DUPFD_CLOEXEC, 950);
    note_file(hc.snap_fd, 0);
    close(fd);
    hc.snap = m;
    const unsigned char *p = m;
    /* hcontainer validated the snapshot; these checks catch a snapshot handed
     * to the wrong binary by hand. */
    if (hc.snap_len < 32 || memcmp(p, HC_SNAP_MAGIC, 8) || *(const uint32_t *)(p + 8) != HC_SNAP_VERSION)
        restore_fail("not a snapshot of this hcontainer version", 0);
    if (memcmp(p + 16, build_id(), 16)) restore_fail("snapshot is for another build of this program", 0);
    map_memory_file();
    /* The program's memory may need the addresses this process's own stack
     * occupies (qemu puts every guest's stack at the same place): run the
     * rest on a fresh stack placed clear of every region, and let the old
     * one go. */
    /* The mappings of this process's stack and of the brk area after the
     * image, in one pass over /proc/self/maps (1.5 ms each under qemu). */
    static uint64_t old[6];
    old[0] = (uint64_t)__builtin_frame_address(0);
    old[3] = image_end();
    for_each_map(find_two_maps, old);
    size_t size = 8u << 20;
    char *stack = MAP_FAILED;
    for (uint64_t hint = HC_SNAPSHOT_ADDR - (64ull << 30); hint > (1ull << 32); hint -= 64ull << 30) {
        stack = mmap((void *)hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (stack == MAP_FAILED) continue;
        if (!overlaps_snapshot((uint64_t)stack, (uint64_t)stack + size)) break;
        munmap(stack, size);
        stack = MAP_FAILED;
    }
    if (stack == MAP_FAILED) restore_fail("cannot place a stack for the restored process", 0);
    mprotect(stack, 4096, PROT_NONE); /* guard */
    hc_switch_stack(stack + size, restore_on_new_stack, old);
}

/* Whether a region the snapshot will map overlaps [s, e), or (`whole`)
 * holds all of it. */
static int snapshot_region_meets(uint64_t s, uint64_t e, int whole) {
    const unsigned char *p = hc.snap + 32, *end = hc.snap + hc.snap_len;
    while (p + 16 <= end) {
        uint32_t kind = *(const uint32_t *)p;
        uint64_t len = *(const uint64_t *)(p + 8);
        if (kind == HC_REC_END || p + 16 + len > end) break;
        if (kind == HC_REC_REGION) {
            const struct hc_region_hdr *h = (const void *)(p + 16);
            uint64_t a = h->addr, b = h->addr + h->map_len;
            if (whole ? a <= s && e <= b : a < e && s < b) return 1;
        }
        p += 16 + ((len + 7) & ~(uint64_t)7);
    }
    return 0;
}

static int overlaps_snapshot(uint64_t s, uint64_t e) {
    return snapshot_region_meets(s, e, 0);
}

static int in_one_region(uint64_t s, uint64_t e) {
    return snapshot_region_meets(s, e, 1);
}

/* Becomes who the program was, last (files and memory are restored with
 * hcontainer's rights: the program may hold descriptors it opened before
 * it changed its user). Failing is failing the restore: the destination
 * must not run with more rights than the source. */
static void restore_credentials(void) {
    const struct hc_process *c = hc.creds;
    if (!c) return;
    restore_attrs(c);
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    int same = r == c->uid[0] && e == c->uid[1] && s == c->uid[2] && gr == c->gid[0] && ge == c->gid[1] &&
               gs == c->gid[2];
    if (!same) {
        gid_t groups[32];
        for (uint32_t i = 0; i < c->ngroups && i < 32; i++) groups[i] = c->groups[i];
        if (setgroups(c->ngroups > 32 ? 32 : c->ngroups, groups) ||
            setresgid(c->gid[0], c->gid[1], c->gid[2]) || setresuid(c->uid[0], c->uid[1], c->uid[2]))
            restore_fail("cannot become the program's user and groups (a program that changed its user "
                         "is restored by hcontainer running as root): uid",
                         c->uid[1]);
    }
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        restore_fail("cannot set no_new_privs as the program had it", 0);
    restore_attrs_after_credentials(c);
}

static void restore_on_new_stack(void *arg) {
    const uint64_t *old = arg;
    preserve_auxv();
    if (old[2] > old[1]) munmap((void *)old[1], old[2] - old[1]);
    /* This process has not used its brk heap (qemu reserves one after the
     * image); the source's heap may need those addresses. */
    if (old[5] > image_end()) munmap((void *)image_end(), old[5] - image_end());
    const unsigned char *p = hc.snap + 32, *end = hc.snap + hc.snap_len;
    while (p + 16 <= end) {
        uint32_t kind = *(const uint32_t *)p;
        uint64_t len = *(const uint64_t *)(p + 8);
        const unsigned char *body = p + 16;
        if (body + len > end) restore_fail("snapshot truncated", (uint64_t)(p - hc.snap));
        switch (kind) {
        case HC_REC_REGION:
            restore_region((const void *)body, body + len);
            break;
        case HC_REC_TLS: {
            uint64_t size = *(const uint64_t *)(body + 8);
            tls_restore_at(*(const uint64_t *)body);
            memcpy(tls_block(), body + 16, size);
            break;
        }
        case HC_REC_FDS:
            restore_files(body, body + len);
            break;
        case HC_REC_MISC: {
            const struct hc_misc *mi = (const void *)body;
            /* The working directory and umask, as the source had them. */
            static char cwd[4096];
            uint64_t cwd_padded = (mi->cwd_len + 7) & ~7u;
            if (mi->cwd_len >= sizeof cwd || sizeof *mi + cwd_padded + sizeof(struct hc_process) > len)
                restore_fail("snapshot: working directory record damaged", 0);
            restore_process((const struct hc_process *)((const unsigned char *)(mi + 1) + cwd_padded));
            memcpy(cwd, mi + 1, mi->cwd_len);
            cwd[mi->cwd_len] = 0;
            if (cwd[0] && chdir(cwd)) restore_fail("cannot enter the program's working directory (moved or deleted?)", 0);
            umask((mode_t)mi->umask);
            hc.saved_errno = mi->err;
            hc.argv_start = mi->argv_start;
            hc.stack_end = mi->stack_end;
            break;
        }
        case HC_REC_SIGNALS:
            if (len < sizeof(struct hc_signals) ||
                len < sizeof(struct hc_signals) + ((const struct hc_signals *)body)->count * sizeof(struct hc_sigaction) +
                          sizeof(struct hc_altstack))
                restore_fail("snapshot: signal record damaged", 0);
            restore_signals((const void *)body);
            break;
        case HC_REC_FRAMES:
            hc.frames_left = *(const uint32_t *)body;
            hc.frame = body + 8;
            break;
        default:
            break;
        }
        if (kind == HC_REC_END) break;
        p = body + ((len + 7) & ~(uint64_t)7);
    }
    if (!hc.frames_left) restore_fail("snapshot has no frames", 0);
    restore_credentials();
    /* Fault injection (tests): die with the memory half restored. */
    if (hc.fault_restore_exit) _exit(99);
    hc.restoring = 1;
    poll_set(HC_POLL_RESTORE);
    /* main re-enters its frame from the first record; the rest follows. */
    exit(main(0, 0, 0));
}

static const struct hc_frame *cur_frame(void) {
    return (const struct hc_frame *)hc.frame;
}

void *__hc_resume_frame(void *fn) {
    if (__hc_poll != HC_POLL_RESTORE) return 0;
    if (!hc.frames_left) restore_fail("restore: a function was entered after the last frame record", (uint64_t)fn);
    const struct hc_frame *f = cur_frame();
    if (f->fn != (uint64_t)fn) restore_fail("restore: entered a function other than the recorded frame's", (uint64_t)fn);
    return (void *)f;
}

int __hc_resume_site(void) {
    if (__hc_poll != HC_POLL_RESTORE || !hc.frames_left) return -1;
    return (int)cur_frame()->site;
}

/* A call re-issued on resume with no callee record: fails the restore (it
 * is entered in the callee's place, with the call's arguments). */
__attribute__((noreturn)) static void resume_no_callee(void) {
    restore_fail("restore: an indirect call has no callee frame record", 0);
}

/* Uses up the current frame record; returns the function a call re-issued
 * on resume must enter: the one whose frame record is next. One call does
 * both, as every resume path needs both (a call fewer in each of them). */
void *__hc_resume_take(void) {
    const struct hc_frame *f = cur_frame();
    hc.frame += sizeof *f + f->size;
    hc.frames_left--;
    if (hc.frames_left) return (void *)cur_frame()->fn;
    /* The innermost frame waited in a blocking call: make it again. */
    if (__hc_pending.op) return (void *)__wrap___hc_resume_blocked_call;
    /* A poll site's resume path calls nothing: no record needed. */
    return (void *)resume_no_callee;
}

void __hc_resume_bad(void *fn, int site) {
    (void)site;
    restore_fail("restore: frame record names a site the function does not have", (uint64_t)fn);
}

static void finish_restore(void) {
    if (hc.frames_left) restore_fail("restore: frame records left when the migration point was reached", 0);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ns = (uint64_t)(t1.tv_sec - hc.restore_t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec -
                  (uint64_t)hc.restore_t0.tv_nsec;
    munmap((void *)hc.snap, hc.snap_len);
    if (hc.snap_fd >= 0) close(hc.snap_fd);
    hc.snap_fd = -1;
    hc.snap = 0;
    if (hc.mem) munmap((void *)hc.mem, hc.mem_len);
    if (hc.mem_fd >= 0) close(hc.mem_fd);
    hc.mem_fd = -1;
    hc.mem = 0;
    hc.restoring = 0;
    poll_set(hc.countdown > 0 ? HC_POLL_REQUEST : HC_POLL_OFF);
    if (hc.ctl >= 0) {
        char buf[64];
        char *o = put_str(buf, "RESTORED ");
        o = put_u64(o, ns);
        *o++ = '\n';
        *o = 0;
        ctl_send(buf);
        /* Wait until the source has let go before touching shared state. */
        if (ctl_recv(buf, sizeof buf) < 0 || strncmp(buf, "GO", 2)) _exit(70);
    }
    resume_signals();
    errno = hc.saved_errno;
}

/* Root may become another user (servers drop their rights): keep a dump
 * file it can still write then (unnamed, gone with the process). */
static void open_spare(void) {
    if (geteuid() != 0 || hc.spare_fd >= 0) return;
    int t = open(hc.dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (t >= 0) {
        hc.spare_fd = fcntl(t, F_DUPFD_CLOEXEC, 900);
        close(t);
    }
}

/* ---- Adoption: a program started plainly (no hcontainer around it) is
 * asked by HC_ADOPT_SIGNAL to connect to `hcontainer adopt`, which then
 * supervises it like a program it started. ---- */

static int adopt(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    /* Abstract name (leading NUL): no file to clean up, no TMPDIR to agree on. */
    char *o = put_str(a.sun_path + 1, HC_ADOPT_NAME);
    o = put_u64(o, (uint64_t)getpid());
    socklen_t len = (socklen_t)(o - (char *)&a);
    struct ucred cred;
    socklen_t cl = sizeof cred;
    char line[sizeof hc.dir + 8];
    /* Only our own user (or root) may take our memory. */
    if (connect(fd, (struct sockaddr *)&a, len) || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ||
        (cred.uid != getuid() && cred.uid != 0)) {
        close(fd);
        return -1;
    }
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
    close(fd);
    if (hi < 0) return -1;
    hc.ctl = hi;
    /* "DIR <where dumps go>" */
    if (ctl_recv(line, sizeof line) < 5 || strncmp(line, "DIR ", 4) || hc_strlen(line + 4) >= sizeof hc.dir) {
        close(hc.ctl);
        hc.ctl = -1;
        return -1;
    }
    memcpy(hc.dir, line + 4, hc_strlen(line + 4) + 1);
    open_spare();
    hc.adopted = 1;
    ctl_send("ADOPTED\n");
    return 0;
}

/* Signals the user sends to the program's original process, which is all
 * its parent and shell know of it, go on to where it now runs. */
static void forward_signal(int sig) {
    char m[24], *o = put_str(m, "KILL ");
    o = put_u64(o, (uint64_t)sig);
    *o++ = '\n';
    write_all(hc.ctl, m, (size_t)(o - m));
    if (sig == SIGTSTP) raise(SIGSTOP);
}

/* What become_stub keeps (its stack, TLS and thread descriptor) and what it unmaps. */
struct keep_out {
    uint64_t sp, tls, tp;
    unsigned n;
    uint64_t maps[512][2];
};
static int unmap_program_memory(const struct map *m, void *arg);

/* An adopted program has moved on: its original process stays, as the
 * process its parent waits for, holding nothing (no descriptors, no memory
 * beyond this code), and ends with the program's exit status. */
static void __attribute__((noreturn)) become_stub(void) {
    for (int fd = 0; fd < 4096; fd++)
        if (fd != hc.ctl) close(fd);
    static const int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP, SIGALRM};
    struct sigaction sa = {0};
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigset_t all;
    sigemptyset(&all);
    for (unsigned i = 0; i < sizeof fwd / sizeof fwd[0]; i++) {
        sigaction(fwd[i], &sa, 0);
        sigaddset(&all, fwd[i]);
    }
    struct itimerval off = {0};
    for (int t = 0; t < 3; t++) setitimer(t, &off, 0);
    sigprocmask(SIG_UNBLOCK, &all, 0);
    static struct keep_out k;
    k.sp = (uint64_t)__builtin_frame_address(0);
    k.tls = (uint64_t)&__hc_tls_anchor;
    k.tp = (uint64_t)__builtin_thread_pointer();
    for_each_map(unmap_program_memory, &k);
    for (unsigned i = 0; i < k.n; i++) munmap((void *)k.maps[i][0], k.maps[i][1] - k.maps[i][0]);
    ctl_send("PARKED\n");
    char line[64];
    for (;;) {
        int n = ctl_recv(line, sizeof line);
        if (n < 0) _exit(70); /* hcontainer adopt is gone: the outcome is unknown */
        if (!strncmp(line, "STATUS ", 7)) _exit((int)parse_u64(line + 7));
        if (!strncmp(line, "SIGNAL ", 7)) {
            int s = (int)parse_u64(line + 7);
            signal(s, SIG_DFL);
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, s);
            sigprocmask(SIG_UNBLOCK, &one, 0);
            raise(s);
            _exit(128 + s);
        }
    }
}

/* Collects the program's own anonymous and heap mappings (outside the
 * image, not this stack or thread) for become_stub to unmap after the walk. */
static int unmap_program_memory(const struct map *m, void *arg) {
    struct keep_out *k = arg;
    if (!(m->prot & PROT_WRITE) || (m->name[0] && strcmp(m->name, "[heap]"))) return 0;
    if (m->start < (uint64_t)__hc_image_end && m->end > (uint64_t)__hc_image_start) return 0;
    uint64_t keep[] = {k->sp, k->tls, k->tp};
    for (int i = 0; i < 3; i++)
        if (keep[i] >= m->start && keep[i] < m->end) return 0;
    if (k->n < 512) {
        k->maps[k->n][0] = m->start;
        k->maps[k->n][1] = m->end;
        k->n++;
    }
    return 0;
}

/* ---- Migration point. ---- */

/* How long a request waits for a function that cannot migrate to leave
 * the stack before it is refused (checked at a migration point each time
 * hcontainer signals again after a BUSY). */
#define HC_DECLINE_NS 500000000ull
/* How long polls stay on meanwhile before they go off until hcontainer
 * signals again (BUSY). */
#define HC_BUSY_NS 1000000ull

void __hc_migrate_point_c(struct hc_regs *r) {
    int err = errno;
    if (__hc_poll == HC_POLL_RESTORE) {
        finish_restore();
        return;
    }
    if (__hc_poll == HC_POLL_OFF || hc.sandboxed) {
        /* The request was taken meanwhile (by a signal handler's poll), or
         * a seccomp filter came in between: no system call here. */
        __hc_poll_record_busy = 0;
        return;
    }
    /* A poll that writes its record into __hc_poll_record marks it busy
     * first and passes its address. If another migration-point call
     * cleared the mark in between (a signal handler's poll: it is refused,
     * signal frames are no sites), the buffer may hold that one's values:
     * wait for the next poll. Entry polls and polls whose values are deopt
     * operands pass no record and leave the mark alone. */
    if (r->gpr[HC_ARG0]) {
        int intact = __hc_poll_record_busy;
        __hc_poll_record_busy = 0;
        if (!intact) return;
    }
    if (hc.countdown > 0 && --hc.countdown > 0) return;
    if (__hc_unmigratable && hc.ctl >= 0) {
        /* A function that cannot migrate is on the stack: the request
         * stays, and the first migration point after it returned takes it.
         * Only after HC_DECLINE_NS of that is it refused (below, without a
         * dump), so hcontainer can say why and decide. */
        uint64_t t = now_ns();
        if (!hc.declined_since) hc.declined_since = t;
        if (!hc.busy_since) hc.busy_since = t;
        if (t - hc.declined_since < HC_DECLINE_NS) {
            /* Polls stay on for HC_BUSY_NS, which catches a function that
             * returns soon (one called over and over by code that can
             * migrate), then go off: a tight loop under a long call
             * (qsort's comparator) comes through here at every poll and
             * ran several times slower. hcontainer signals again shortly. */
            if (t - hc.busy_since >= HC_BUSY_NS) {
                hc.busy_since = 0;
                poll_set(HC_POLL_OFF);
                ctl_send("BUSY\n");
            }
            errno = err;
            return;
        }
    }
    hc.busy_since = 0;
    hc.declined_since = 0;
    poll_set(HC_POLL_OFF);
    if (hc.ctl < 0) {
        /* Started plainly: the signal was `hcontainer adopt` asking to
         * supervise; it signals again for what it wants then. */
        if (hc.signo == HC_ADOPT_SIGNAL) adopt();
        errno = err;
        return;
    }
    uint64_t t0 = now_ns();
    /* This is the retry (our own closes below must not ask for another). */
    hc.retry_on_unlock = 0;
    char path[600], msg[700], reply[128];
    char *o;
    sigset_t pend;
    sigpending(&pend);
    if (__hc_unmigratable) {
        /* hcontainer names the function (its metadata has the reason). */
        o = put_hex(put_str(msg, "NOTHERE "), (uint64_t)(uintptr_t)__hc_unmigratable);
        *o++ = '\n';
        *o = 0;
        ctl_send(msg);
    } else if (__atomic_load_n(&hc_threads, __ATOMIC_SEQ_CST) > 0) {
        /* Only this thread's state would be dumped: nothing may be lost. */
        ctl_send("DUMPFAIL the program has other threads running, and threads do not migrate yet\n");
    } else if (__atomic_load_n(&hc_timers, __ATOMIC_SEQ_CST) > 0) {
        ctl_send("DUMPFAIL the program has POSIX timers (timer_create), whose ids and expirations cannot be carried yet\n");
    } else if (child_process(msg, sizeof msg)) {
        ctl_send(msg);
    } else if (fd_that_waits(msg, sizeof msg)) {
        hc.lock_refused = strstr(msg, "POSIX record lock") != 0;
        ctl_send(msg);
    } else if (set_bits(&pend) >> 32) {
        /* A queued real-time signal carries a value sigpending cannot see. */
        ctl_send("DUMPFAIL a real-time signal is pending (blocked), and its queued value cannot be carried\n");
    } else if (write_dump(r, err, path, t0) != 0) {
        ctl_send("DUMPFAIL cannot write the dump\n");
        o = 0;
    } else {
        pass_fds();
        o = put_str(msg, "DUMP ");
        o = put_str(o, path);
        *o++ = '\n';
        *o = 0;
        ctl_send(msg);
    }
    /* Parked: the destination restores; we exit only once it has confirmed. */
    int n = ctl_recv(reply, sizeof reply);
    if (n >= 4 && !strncmp(reply, "EXIT", 4)) {
        /* Our stdio buffers now belong to the destination: no flushing. */
        if (hc.adopted) become_stub();
        _exit(0);
    }
    /* CONT <points> [UNLOCK]: continue (hcontainer refused or the
     * destination failed); UNLOCK: it will retry, so a dump that waited for
     * a record lock is tried again at the next point after an unlock. */
    if (n > 5 && !strncmp(reply, "CONT ", 5)) {
        hc.countdown = (long)parse_u64(reply + 5);
        if (hc.countdown > 0) poll_set(HC_POLL_REQUEST);
        hc.retry_on_unlock = hc.lock_refused && strstr(reply, " UNLOCK");
    }
    hc.lock_refused = 0;
    errno = err;
}

/* ---- Threads: every thread gets a shadow stack of its own. hld links with
 * --wrap=pthread_create so the program's calls come here. Threads do not
 * migrate yet: a migration point reached while other threads run refuses. ---- */

struct thread_start {
    void *(*fn)(void *);
    void *arg;
};

extern int __real_pthread_create(void *, const void *, void *(*)(void *), void *);

static void *thread_trampoline(void *p) {
    __atomic_add_fetch(&hc_threads, 1, __ATOMIC_SEQ_CST);
    struct thread_start st = *(struct thread_start *)p;
    munmap(p, 4096);
    size_t size = 8u << 20;
    char *s = mmap(0, size + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED) {
        say("cannot allocate a thread's shadow stack");
        _exit(70);
    }
    mprotect(s + size, 4096, PROT_NONE);
    __hc_ssp = s;
    void *r = st.fn(st.arg);
    munmap(s, size + 4096);
    __atomic_sub_fetch(&hc_threads, 1, __ATOMIC_SEQ_CST);
    return r;
}

int *__real___errno_location(void);

int *__wrap___errno_location(void) {
    if ((uint64_t)__builtin_thread_pointer() == hc.main_tp) return &__hc_main_errno;
    return __real___errno_location();
}

/* musl's own code reaches errno through this hidden alias. */
int *__wrap____errno_location(void) {
    return __wrap___errno_location();
}

extern int __real_timer_create(clockid_t, struct sigevent *, timer_t *);
extern int __real_timer_delete(timer_t);

int __wrap_timer_create(clockid_t clock, struct sigevent *ev, timer_t *t) {
    int r = __real_timer_create(clock, ev, t);
    if (r == 0) __atomic_add_fetch(&hc_timers, 1, __ATOMIC_SEQ_CST);
    return r;
}

int __wrap_timer_delete(timer_t t) {
    int r = __real_timer_delete(t);
    if (r == 0) __atomic_sub_fetch(&hc_timers, 1, __ATOMIC_SEQ_CST);
    return r;
}

/* Record locks are released by fcntl (lockf calls it too) or by closing a
 * descriptor of the file: hld links with --wrap for both, so a migration
 * that waits for a lock happens at the first migration point after it is
 * released (sqlite3 holds one for most of a write-heavy run; retries on a
 * timer kept missing the gaps). */
extern int __real_fcntl(int, int, ...);
extern int __real_close(int);

static void released_a_lock(void) {
    if (hc.retry_on_unlock) {
        hc.retry_on_unlock = 0;
        poll_set(HC_POLL_REQUEST);
    }
}

/* A migration request (hcontainer's signal, which the program never asked
 * for) interrupted sleeps: sleep(1) returned after 0.4 s telling the
 * program it had slept in full, and a loop that sleeps ticked early at
 * every request. Such a sleep now goes on to its end (the migration
 * happens at the next migration point after it), as it would have without
 * the request. A signal of the program's own that comes during the same
 * sleep as a request does not cut it short either: the program's handler
 * has run, only the early return is lost. hld wraps musl's
 * __clock_nanosleep (under nanosleep, sleep, usleep) and clock_nanosleep. */
typedef int clock_nanosleep_fn(clockid_t, int, const struct timespec *, struct timespec *);

static int sleep_on(clock_nanosleep_fn *real, clockid_t clk, int flags, const struct timespec *req,
                    struct timespec *rem) {
    struct timespec t = *req, left = {0};
    for (;;) {
        unsigned seen = hc_request_signals;
        int r = real(clk, flags, &t, &left);
        if (r != EINTR || hc_request_signals == seen) {
            if (r == EINTR && rem && !(flags & TIMER_ABSTIME)) *rem = left;
            return r;
        }
        if (!(flags & TIMER_ABSTIME)) t = left;
    }
}

extern clock_nanosleep_fn __real___clock_nanosleep;

int __wrap___clock_nanosleep(clockid_t clk, int flags, const struct timespec *req, struct timespec *rem) {
    return sleep_on(__real___clock_nanosleep, clk, flags, req, rem);
}

/* ---- Blocking calls. A program waiting in read() for input that does not
 * come (a service between requests, a filter whose producer is idle) never
 * reached a migration point: SA_RESTART restarted the wait after every
 * request. hld wraps the calls below; the wrapper (hc_blocking_entry, asm)
 * saves the caller's registers as at the call's return, and makes the
 * system call through hc_blocking_syscall, which a request cancels (the
 * call not made, or to be restarted, or interrupted with EINTR). The
 * migration then happens right there: the caller's frame is at the call's
 * site (hcc makes these calls sites), the call itself is kept in
 * __hc_pending (migrated memory), and the destination makes it again when
 * the resumed caller re-issues the call (__hc_resume_take ->
 * __hc_resume_blocked). Only the main thread, while it is the only one,
 * waits so; otherwise musl's own call runs (a cancellation point). ---- */
#define HC_BLOCKING_CALLS(X)                                                                        \
    X(read, 1) X(readv, 2) X(write, 3) X(writev, 4) X(recv, 5) X(recvfrom, 6) X(recvmsg, 7)         \
    X(send, 8) X(sendto, 9) X(sendmsg, 10) X(accept, 11) X(accept4, 12) X(poll, 13) X(select, 14)  \
    X(pause, 15)
/* stdio's reads wait inside musl, whose frames cannot migrate: the
 * wrapper waits for input first (migrating meanwhile if asked), when the
 * FILE has nothing buffered, and then calls musl's function. Calls that
 * read a line or a block; not getc, fgetc and getchar, which a program
 * calls per character: their wrapper and site cost a character loop a
 * quarter more instructions (they migrate once the character comes). */
#define HC_STDIO_CALLS(X) X(fgets, 16) X(fread, 17)
/* Wrapped only in programs that call one of them (hld's on-demand wraps):
 * musl's getdelim would link its full malloc into every program (one that
 * never frees gets musl's bump allocator). So the runtime's reference to
 * it is weak. getline is made as getdelim. */
#define HC_STDIO_LINE_CALLS(X) X(getline, 24) X(getdelim, 25)
/* hcc redirects the program's scanf and fscanf calls (variadic, so no
 * sites) to __hcw_fscanf(FILE *, format, n, pointers[n]), and its vscanf
 * and vfscanf calls to __hcw_vfscanf(FILE *, format, va_list): both made
 * as musl's vfscanf, referenced weakly (the number parsers; hld makes a
 * program that calls these entries link it). */
#define HC_SCANF_CALLS(X) X(fscanf, 26) X(vfscanf, 27)
/* The most pointers a vfscanf's va_list is read for (a format with more,
 * which no real one has, gets this many). */
#define HC_SCANF_MOST 4096
/* Sleeps the program asks for itself: a request migrates it mid-sleep and
 * the destination sleeps what is left (musl's own sleeps, and other
 * threads', go on through sleep_on). */
#define HC_SLEEP_CALLS(X) X(sleep, 20) X(usleep, 21) X(nanosleep, 22) X(clock_nanosleep, 23)
#define HC_BLOCKING_CANCELLED (-5000)
#define HC_OP_(name, n) HC_OP_##name = n,
enum {
    HC_BLOCKING_CALLS(HC_OP_) HC_STDIO_CALLS(HC_OP_) HC_SLEEP_CALLS(HC_OP_) HC_STDIO_LINE_CALLS(HC_OP_)
        HC_SCANF_CALLS(HC_OP_)
};


extern const char hc_blocking_begin[], hc_blocking_end[], hc_blocking_cancel[];
long hc_blocking_syscall(long nr, long a, long b, long c, long d, long e, long f);
long hc_blocking_c(struct hc_regs *r, uint32_t op);

#if defined(__x86_64__)
static const int blocking_args[6] = {5, 4, 1, 2, 8, 9}; /* rdi rsi rdx rcx r8 r9 */
/* A va_list whose arguments are `words` (SysV psABI 3.5.7: registers used up,
 * so va_arg reads the overflow area). */
static void va_over(va_list *ap, uint64_t *words) {
    struct {
        unsigned gp_offset, fp_offset;
        void *overflow_arg_area, *reg_save_area;
    } *v = (void *)ap;
    v->gp_offset = 48;
    v->fp_offset = 176;
    v->overflow_arg_area = words;
    v->reg_save_area = 0;
}
static uint64_t *uc_pc(ucontext_t *uc) {
    return (uint64_t *)&uc->uc_mcontext.gregs[REG_RIP];
}
static int64_t uc_result(ucontext_t *uc) {
    return uc->uc_mcontext.gregs[REG_RAX];
}
#define HC_ENTRY_STUB(sym, op)                                                                      \
    __asm__(".section .text." #sym ",\"ax\",@progbits\n.globl " #sym "\n.type " #sym               \
            ",@function\n" #sym ":\n movl $" #op ", %r11d\n jmp hc_blocking_entry\n.previous\n");
#else
static const int blocking_args[6] = {0, 1, 2, 3, 4, 5}; /* x0-x5 */
/* A va_list whose arguments are `words` (AAPCS64 B.4: __gr_offs >= 0 means
 * the registers are used up, so va_arg reads the stack area). */
static void va_over(va_list *ap, uint64_t *words) {
    struct {
        void *stack, *gr_top, *vr_top;
        int gr_offs, vr_offs;
    } *v = (void *)ap;
    v->stack = words;
    v->gr_top = v->vr_top = 0;
    v->gr_offs = v->vr_offs = 0;
}
static uint64_t *uc_pc(ucontext_t *uc) {
    return (uint64_t *)&uc->uc_mcontext.pc;
}
static int64_t uc_result(ucontext_t *uc) {
    return (int64_t)uc->uc_mcontext.regs[0];
}
#define HC_ENTRY_STUB(sym, op)                                                                      \
    __asm__(".section .text." #sym ",\"ax\",%progbits\n.globl " #sym "\n.type " #sym               \
            ",%function\n" #sym ":\n mov w9, #" #op "\n b hc_blocking_entry\n.previous\n");
#endif
/* The wrapper of each blocking call is such a stub; a stdio call's is
 * called only when it would wait (__wrap_fgets etc. below). */
#define HC_WRAP_STUB(name, op) HC_ENTRY_STUB(__wrap_##name, op)
#define HC_WAIT_STUB(name, op) HC_ENTRY_STUB(hc_wait_##name, op)
HC_BLOCKING_CALLS(HC_WRAP_STUB)
HC_SLEEP_CALLS(HC_WRAP_STUB)
HC_STDIO_CALLS(HC_WAIT_STUB)
HC_STDIO_LINE_CALLS(HC_WAIT_STUB)
#define HC_SCANF_STUB(name, op) HC_ENTRY_STUB(__hcw_##name, op)
HC_SCANF_CALLS(HC_SCANF_STUB)
/* Re-issued by a restored caller: operation 0 makes the pending call. */
HC_ENTRY_STUB(__wrap___hc_resume_blocked_call, 0)

/* The request signal came while the main thread waited in (or was about
 * to wait in) hc_blocking_syscall: cancel the wait. */
static void blocking_cancel(void *ctx) {
    uint64_t *pc = uc_pc(ctx);
    if ((*pc >= (uint64_t)hc_blocking_begin && *pc < (uint64_t)hc_blocking_end) ||
        (*pc == (uint64_t)hc_blocking_end && uc_result(ctx) == -EINTR))
        *pc = (uint64_t)hc_blocking_cancel;
}

/* The call, made cancellable; HC_BLOCKING_CANCELLED if a request came. */
static long blocking_syscall(uint32_t op, const uint64_t *a) {
    long (*sc)(long, long, long, long, long, long, long) = hc_blocking_syscall;
    switch (op) {
    case HC_OP_read: return sc(SYS_read, (int)a[0], a[1], a[2], 0, 0, 0);
    case HC_OP_readv: return sc(SYS_readv, (int)a[0], a[1], (int)a[2], 0, 0, 0);
    case HC_OP_write: return sc(SYS_write, (int)a[0], a[1], a[2], 0, 0, 0);
    case HC_OP_writev: return sc(SYS_writev, (int)a[0], a[1], (int)a[2], 0, 0, 0);
    case HC_OP_recv: return sc(SYS_recvfrom, (int)a[0], a[1], a[2], (int)a[3], 0, 0);
    case HC_OP_recvfrom: return sc(SYS_recvfrom, (int)a[0], a[1], a[2], (int)a[3], a[4], a[5]);
    case HC_OP_recvmsg: return sc(SYS_recvmsg, (int)a[0], a[1], (int)a[2], 0, 0, 0);
    case HC_OP_send: return sc(SYS_sendto, (int)a[0], a[1], a[2], (int)a[3], 0, 0);
    case HC_OP_sendto: return sc(SYS_sendto, (int)a[0], a[1], a[2], (int)a[3], a[4], (uint32_t)a[5]);
    case HC_OP_sendmsg: return sc(SYS_sendmsg, (int)a[0], a[1], (int)a[2], 0, 0, 0);
    case HC_OP_accept: return sc(SYS_accept, (int)a[0], a[1], a[2], 0, 0, 0);
    case HC_OP_accept4: return sc(SYS_accept4, (int)a[0], a[1], a[2], (int)a[3], 0, 0);
    case HC_OP_poll: {
#ifdef SYS_poll
        return sc(SYS_poll, a[0], a[1], (int)a[2], 0, 0, 0);
#else
        int ms = (int)a[2];
        struct timespec ts = {ms / 1000, ms % 1000 * 1000000L};
        return sc(SYS_ppoll, a[0], a[1], ms >= 0 ? (long)&ts : 0, 0, _NSIG / 8, 0);
#endif
    }
    case HC_OP_select: {
#ifdef SYS_select
        return sc(SYS_select, (int)a[0], a[1], a[2], a[3], a[4], 0);
#else
        const struct timeval *tv = (const void *)a[4];
        struct timespec ts;
        if (tv) {
            if (tv->tv_sec < 0 || tv->tv_usec < 0) return -EINVAL;
            ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
            ts.tv_nsec = tv->tv_usec % 1000000 * 1000;
        }
        long mask[2] = {0, _NSIG / 8};
        return sc(SYS_pselect6, (int)a[0], a[1], a[2], a[3], tv ? (long)&ts : 0, (long)mask);
#endif
    }
    case HC_OP_pause: {
#ifdef SYS_pause
        return sc(SYS_pause, 0, 0, 0, 0, 0, 0);
#else
        return sc(SYS_ppoll, 0, 0, 0, 0, _NSIG / 8, 0);
#endif
    }
    }
    return -ENOSYS;
}


/* musl's own call, for other threads (and the main one while they run). */
static long blocking_real(uint32_t op, const uint64_t *a) {
    void *p1 = (void *)a[1], *p2 = (void *)a[2], *p3 = (void *)a[3], *p4 = (void *)a[4];
    switch (op) {
    case HC_OP_read: return __real_read((int)a[0], p1, a[2]);
    case HC_OP_readv: return __real_readv((int)a[0], p1, (int)a[2]);
    case HC_OP_write: return __real_write((int)a[0], p1, a[2]);
    case HC_OP_writev: return __real_writev((int)a[0], p1, (int)a[2]);
    case HC_OP_recv: return __real_recv((int)a[0], p1, a[2], (int)a[3]);
    case HC_OP_recvfrom: return __real_recvfrom((int)a[0], p1, a[2], (int)a[3], p4, (void *)a[5]);
    case HC_OP_recvmsg: return __real_recvmsg((int)a[0], p1, (int)a[2]);
    case HC_OP_send: return __real_send((int)a[0], p1, a[2], (int)a[3]);
    case HC_OP_sendto: return __real_sendto((int)a[0], p1, a[2], (int)a[3], p4, (socklen_t)a[5]);
    case HC_OP_sendmsg: return __real_sendmsg((int)a[0], p1, (int)a[2]);
    case HC_OP_accept: return __real_accept((int)a[0], p1, p2);
    case HC_OP_accept4: return __real_accept4((int)a[0], p1, p2, (int)a[3]);
    case HC_OP_poll: return __real_poll((void *)a[0], a[1], (int)a[2]);
    case HC_OP_select: return __real_select((int)a[0], p1, p2, p3, p4);
    case HC_OP_pause: return __real_pause();
    case HC_OP_sleep: return __real_sleep((unsigned)a[0]);
    case HC_OP_usleep: return __real_usleep((unsigned)a[0]);
    case HC_OP_nanosleep: return __real_nanosleep((const void *)a[0], p1);
    case HC_OP_clock_nanosleep: return __real_clock_nanosleep((clockid_t)a[0], (int)a[1], p2, p3);
    }
    errno = ENOSYS;
    return -1;
}

extern char *__real_fgets(char *, int, FILE *);
extern size_t __real_fread(void *, size_t, size_t, FILE *);
extern ssize_t __real_getdelim(char **, size_t *, int, FILE *) __attribute__((weak));
#pragma weak vfscanf

/* Inside a call hc_blocking_c makes: wrapped calls musl makes inside it
 * go straight to musl. */
static int hc_blocking_depth;

static FILE *stdio_file(uint32_t op, const uint64_t *a) {
    switch (op) {
    case HC_OP_fgets: return (FILE *)a[2];
    case HC_OP_fread: return (FILE *)a[3];
    case HC_OP_getline: return (FILE *)a[2];
    case HC_OP_getdelim: return (FILE *)a[3];
    case HC_OP_fscanf: return (FILE *)a[0];
    case HC_OP_vfscanf: return (FILE *)a[0];
    }
    return 0;
}

static int is_stdio(uint32_t op) {
    return op == HC_OP_fgets || op == HC_OP_fread || (op >= HC_OP_getline && op <= HC_OP_vfscanf);
}

static int is_scanf(uint32_t op) {
    return op == HC_OP_fscanf || op == HC_OP_vfscanf;
}

/* At least as many pointers as a scanf format takes: one per '%' (a "%%"
 * counts two, a suppressed conversion one), or its largest "%n$". Too
 * many only reads words the call did not pass; too few would let musl read
 * past the captured ones. */
static long scanf_pointers(const char *fmt) {
    long count = 0, most = 0;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') continue;
        count++;
        long n = 0;
        const char *q = p + 1;
        while (*q >= '0' && *q <= '9' && n < HC_SCANF_MOST) n = n * 10 + (*q++ - '0');
        if (*q == '$' && n > most) most = n;
    }
    count = count > most ? count : most;
    return count < HC_SCANF_MOST ? count : HC_SCANF_MOST;
}

/* The pointers a vfscanf's va_list holds: `count` words. */
static void scanf_capture(const uint64_t *a, uint64_t *out, long count) {
    va_list ap;
    va_copy(ap, *(va_list *)a[2]);
    for (long i = 0; i < count; i++) out[i] = (uint64_t)va_arg(ap, void *);
    va_end(ap);
}

static int stdio_fd(FILE *f) {
    int e = errno, fd = fileno(f); /* EBADF for a FILE without one */
    errno = e;
    return fd;
}

/* The head of musl's struct _IO_FILE (src/internal/stdio_impl.h; the same
 * on both ISAs): the read buffer's unread part. Read directly, since the
 * wrappers run for every call (__freadahead, a call, cost more than the
 * read of a short line). */
struct musl_file_head {
    unsigned flags;
    unsigned char *rpos, *rend;
    int (*close)(FILE *);
    unsigned char *wend, *wpos;
    unsigned char *mustbezero_1;
    unsigned char *wbase;
};

static int stdio_buffered(FILE *f) {
    const struct musl_file_head *h = (const void *)f;
    return h->rpos != h->rend;
}

/* Output a stream read and written holds (a socket's or a pty's "r+"
 * FILE): musl's read functions write it out before they wait, so the
 * wrappers must too — the peer answers only what it was sent (jimtcl's
 * socket and interactive tests waited for each other forever). */
static int stdio_pending_output(FILE *f) {
    const struct musl_file_head *h = (const void *)f;
    return h->wpos != h->wbase;
}

/* Whether the FILE's descriptor never waits (O_NONBLOCK): musl's function
 * then fails at once with EAGAIN, which the program expects (jimtcl's
 * expect package reads a pty that way); waiting for input first hung it. */
static int stdio_nonblocking(FILE *f) {
    int e = errno, fl = fcntl(stdio_fd(f), F_GETFL);
    errno = e;
    return fl >= 0 && (fl & O_NONBLOCK);
}

/* Whether musl's function can run at once: something is buffered, the
 * descriptor does not block, or the waiting could not migrate anyway. */
static __attribute__((noinline)) int stdio_direct_slow(FILE *f) {
    return hc_blocking_depth || __freadahead(f) || (uint64_t)__builtin_thread_pointer() != hc.main_tp ||
           __atomic_load_n(&hc_threads, __ATOMIC_SEQ_CST) > 0 || hc.sandboxed || stdio_fd(f) < 0 ||
           stdio_nonblocking(f);
}

static int stdio_direct(FILE *f) {
    return stdio_buffered(f) || stdio_direct_slow(f);
}

/* musl's function; a scanf's pointers are `ptrs`. */
static long stdio_real(uint32_t op, const uint64_t *a, uint64_t *ptrs) {
    FILE *f = stdio_file(op, a);
    if (is_scanf(op)) {
        va_list ap;
        va_over(&ap, ptrs);
        return vfscanf(f, (const char *)a[1], ap);
    }
    switch (op) {
    case HC_OP_fgets: return (long)__real_fgets((char *)a[0], (int)a[1], f);
    case HC_OP_fread: return (long)__real_fread((void *)a[0], a[1], a[2], f);
    case HC_OP_getline: return __real_getdelim((char **)a[0], (size_t *)a[1], '\n', f);
    case HC_OP_getdelim: return __real_getdelim((char **)a[0], (size_t *)a[1], (int)a[2], f);
    }
    return -1;
}

/* Until the FILE's descriptor has input (or end of file, or an error, which
 * musl's function then reports). */
static long stdio_wait(uint32_t op, const uint64_t *a) {
    FILE *f = stdio_file(op, a);
    if (stdio_pending_output(f)) fflush(f);
    struct pollfd p = {stdio_fd(f), POLLIN, 0};
    uint64_t w[6] = {(uint64_t)&p, 1, (uint64_t)-1};
    long v;
    do v = blocking_syscall(HC_OP_poll, w);
    while (v == -EINTR);
    return v;
}

#define HC_STDIO_WRAPPER(ret, name, params, args, file)                                              \
    ret hc_wait_##name params;                                                                      \
    ret __wrap_##name params {                                                                      \
        if (stdio_direct(file)) __attribute__((musttail)) return __real_##name args;                \
        __attribute__((musttail)) return hc_wait_##name args;                                       \
    }
HC_STDIO_WRAPPER(char *, fgets, (char *s, int n, FILE *f), (s, n, f), f)
HC_STDIO_WRAPPER(size_t, fread, (void *p, size_t size, size_t n, FILE *f), (p, size, n, f), f)
/* No tail calls to musl's getdelim here: aarch64 makes none to a weak
 * function. */
ssize_t hc_wait_getline(char **s, size_t *n, FILE *f);
ssize_t __wrap_getline(char **s, size_t *n, FILE *f) {
    if (stdio_direct(f)) return __real_getdelim(s, n, '\n', f);
    __attribute__((musttail)) return hc_wait_getline(s, n, f);
}
ssize_t hc_wait_getdelim(char **s, size_t *n, int d, FILE *f);
ssize_t __wrap_getdelim(char **s, size_t *n, int d, FILE *f) {
    if (stdio_direct(f)) return __real_getdelim(s, n, d, f);
    __attribute__((musttail)) return hc_wait_getdelim(s, n, d, f);
}

/* The time a sleep asks for: relative, or (clock_nanosleep with
 * TIMER_ABSTIME) the clock's time to wake at. */
static int sleep_request(uint32_t op, const uint64_t *a, struct timespec *t) {
    const struct timespec *req = 0;
    switch (op) {
    case HC_OP_sleep: *t = (struct timespec){(time_t)(unsigned)a[0], 0}; return 0;
    case HC_OP_usleep: *t = (struct timespec){(unsigned)a[0] / 1000000, (unsigned)a[0] % 1000000 * 1000L}; return 0;
    case HC_OP_nanosleep: req = (const void *)a[0]; break;
    case HC_OP_clock_nanosleep: req = (const void *)a[2]; break;
    }
    if (!req) return -EFAULT;
    *t = *req;
    return 0;
}

static int sleep_absolute(uint32_t op, const uint64_t *a) {
    return op == HC_OP_clock_nanosleep && ((int)a[1] & TIMER_ABSTIME);
}

/* Sleeps until `left` has passed (or the absolute time); on a request
 * `left` is what remains. */
static long sleep_wait(uint32_t op, const uint64_t *a, struct timespec *left) {
    clockid_t clk = op == HC_OP_clock_nanosleep ? (clockid_t)a[0] : CLOCK_REALTIME;
    int abs = sleep_absolute(op, a);
    struct timespec t0, t1, rem = {0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long v = hc_blocking_syscall(SYS_clock_nanosleep, clk, abs ? TIMER_ABSTIME : 0, (long)left, (long)&rem, 0, 0);
    if (abs) return v;
    if (v == -EINTR) {
        *left = rem;
    } else if (v == HC_BLOCKING_CANCELLED) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t ns = (int64_t)(left->tv_sec - t1.tv_sec + t0.tv_sec) * 1000000000 + left->tv_nsec - t1.tv_nsec + t0.tv_nsec;
        if (ns < 0) ns = 0;
        *left = (struct timespec){ns / 1000000000, ns % 1000000000};
    }
    return v;
}

/* What the sleep call returns for the system call's result `v`. */
static long sleep_result(uint32_t op, const uint64_t *a, long v, const struct timespec *left) {
    struct timespec *rem = op == HC_OP_nanosleep ? (void *)a[1] : op == HC_OP_clock_nanosleep ? (void *)a[3] : 0;
    if (v == -EINTR && rem && !sleep_absolute(op, a)) *rem = *left;
    switch (op) {
    case HC_OP_sleep: return v ? left->tv_sec : 0; /* seconds not slept */
    case HC_OP_clock_nanosleep: return -v;         /* the error number */
    }
    if (v) {
        errno = (int)-v;
        return -1;
    }
    return 0;
}

static void finish_restore(void);

long hc_blocking_c(struct hc_regs *r, uint32_t op) {
    uint64_t a[6];
    struct timespec left = {0}; /* a sleep's time still to sleep */
    int stdio = 0, sleeps = 0, resumed = op == 0;
    long nptrs = 0;            /* a scanf's pointers */
    uint64_t *given = 0;       /* ... where __hcw_fscanf's caller put them */
    if (resumed) {
        /* The destination: the restored caller re-issued its call. */
        op = __hc_pending.op;
        memcpy(a, __hc_pending.arg, sizeof a);
        left = (struct timespec){(time_t)__hc_pending.left[0], (long)__hc_pending.left[1]};
        nptrs = __hc_pending.nptrs;
        __hc_pending.op = 0;
        finish_restore();
    } else {
        for (int i = 0; i < 6; i++) a[i] = r->gpr[blocking_args[i]];
        if (op == HC_OP_fscanf) {
            nptrs = (long)a[2];
            given = (uint64_t *)a[3];
        } else if (op == HC_OP_vfscanf) {
            nptrs = scanf_pointers((const char *)a[1]);
        }
    }
    uint64_t own[given ? 1 : nptrs ? nptrs : 1];
    uint64_t *ptrs = given ? given : own;
    if (resumed)
        memcpy(ptrs, __hc_pending.ptr, (size_t)nptrs * 8);
    else if (op == HC_OP_vfscanf)
        scanf_capture(a, ptrs, nptrs);
    stdio = is_stdio(op);
    sleeps = op >= HC_OP_sleep && op <= HC_OP_clock_nanosleep;
    /* A scanf with more pointers than __hc_pending holds waits in musl. */
    int direct = stdio ? stdio_direct(stdio_file(op, a)) || nptrs > HC_PENDING_PTRS
                       : hc_blocking_depth || (uint64_t)__builtin_thread_pointer() != hc.main_tp ||
                             __atomic_load_n(&hc_threads, __ATOMIC_SEQ_CST) > 0;
    if (direct) return stdio ? stdio_real(op, a, ptrs) : blocking_real(op, a);
    if (sleeps && !resumed) {
        int e = sleep_request(op, a, &left);
        if (e) return sleep_result(op, a, e, &left);
    }
    for (;;) {
        long v = stdio ? stdio_wait(op, a) : sleeps ? sleep_wait(op, a, &left) : blocking_syscall(op, a);
        if (v != HC_BLOCKING_CANCELLED && sleeps) return sleep_result(op, a, v, &left);
        if (v != HC_BLOCKING_CANCELLED && stdio) {
            hc_blocking_depth++;
            v = stdio_real(op, a, ptrs);
            hc_blocking_depth--;
            return v;
        }
        if (v != HC_BLOCKING_CANCELLED) {
            if ((unsigned long)v > -4096UL) {
                errno = (int)-v;
                return -1;
            }
            return v;
        }
        /* A migration point at the call's site: the caller's frame is the
         * innermost, and the call is made again after it. */
        hc_blocking_request = 0;
        __hc_pending.op = op;
        memcpy(__hc_pending.arg, a, sizeof a);
        __hc_pending.left[0] = (uint64_t)left.tv_sec;
        __hc_pending.left[1] = (uint64_t)left.tv_nsec;
        __hc_pending.nptrs = (uint32_t)nptrs;
        memcpy(__hc_pending.ptr, ptrs, (size_t)nptrs * 8);
        struct hc_regs top = *r;
        top.gpr[HC_ARG0] = 0; /* no poll record */
        __hc_migrate_point_c(&top);
        __hc_pending.op = 0;
    }
}

/* A seccomp filter (or strict mode) stays with the process that installs
 * it: hcontainer cannot install it again in a destination, and it may kill
 * the process (SIGSYS) for a system call a dump makes, losing the program.
 * So before one goes in, while every system call is still allowed, the
 * runtime stops taking requests: a pending one is withdrawn (polls off),
 * and neither the request signal nor a migration point does anything
 * after. hcontainer sees the filter in /proc/PID/status and says why it
 * does not migrate the program. If the filter is not installed after all
 * (qemu-user refuses it to its guest), requests are taken again. */
static long seccomp_install(int strict_or_filter, long (*install)(void *), void *arg) {
    if (!strict_or_filter || hc.sandboxed) return install(arg);
    long countdown = hc.countdown;
    int requested = __hc_poll == HC_POLL_REQUEST;
    hc.sandboxed = 1;
    hc.countdown = 0;
    if (requested) poll_set(HC_POLL_OFF);
    long r = install(arg);
    if (r != 0) {
        int saved = errno;
        hc.sandboxed = 0;
        hc.countdown = countdown;
        if (requested) poll_set(HC_POLL_REQUEST);
        errno = saved;
    }
    return r;
}

extern int __real_prctl(int, ...);
extern long __real_syscall(long, ...);

struct prctl_args {
    int op;
    unsigned long a[4];
};
static long prctl_install(void *p) {
    struct prctl_args *a = p;
    return __real_prctl(a->op, a->a[0], a->a[1], a->a[2], a->a[3]);
}
int __wrap_prctl(int op, ...) {
    struct prctl_args a = {.op = op};
    va_list ap;
    va_start(ap, op);
    for (int i = 0; i < 4; i++) a.a[i] = va_arg(ap, unsigned long);
    va_end(ap);
    return (int)seccomp_install(op == PR_SET_SECCOMP, prctl_install, &a);
}

struct syscall_args {
    long n;
    long a[6];
};
static long syscall_install(void *p) {
    struct syscall_args *a = p;
    return __real_syscall(a->n, a->a[0], a->a[1], a->a[2], a->a[3], a->a[4], a->a[5]);
}
/* libseccomp and most programs install filters through syscall(SYS_seccomp):
 * operations 0 (strict) and 1 (filter) install one. */
long __wrap_syscall(long n, ...) {
    struct syscall_args a = {.n = n};
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < 6; i++) a.a[i] = va_arg(ap, long);
    va_end(ap);
    return seccomp_install(n == SYS_seccomp && (a.a[0] == 0 || a.a[0] == 1), syscall_install, &a);
}

int __wrap_fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    unsigned long arg = va_arg(ap, unsigned long);
    va_end(ap);
    int r = __real_fcntl(fd, cmd, arg);
    if (r == 0 && (cmd == F_SETLK || cmd == F_SETLKW) && ((const struct flock *)arg)->l_type == F_UNLCK)
        released_a_lock();
    return r;
}

int __wrap_close(int fd) {
    int r = __real_close(fd);
    released_a_lock();
    return r;
}

int __wrap_pthread_create(void *thread, const void *attr, void *(*fn)(void *), void *arg) {
    /* No malloc: the program may be inside its allocator's callbacks. */
    struct thread_start *st = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (st == MAP_FAILED) return EAGAIN;
    st->fn = fn;
    st->arg = arg;
    int r = __real_pthread_create(thread, attr, thread_trampoline, st);
    if (r) munmap(st, 4096);
    return r;
}

/* ---- struct stat in one layout. Programs built by hcc see x86_64's struct
 * stat on every ISA (hcc/include/bits/stat.h), and hcc sends their stat
 * calls here; this object is built against musl's own headers, so `struct
 * stat` below is the kernel's layout for this ISA. ---- */

struct hc_stat {
    uint64_t dev, ino, nlink;
    uint32_t mode, uid, gid, pad0;
    uint64_t rdev;
    int64_t size, blksize, blocks;
    struct timespec atim, mtim, ctim;
    int64_t unused[3];
};
_Static_assert(sizeof(struct hc_stat) == 144, "hcc/include/bits/stat.h is 144 bytes");

static int neutral_stat(int r, const struct stat *s, struct hc_stat *o) {
    if (r) return r;
    *o = (struct hc_stat){
        .dev = s->st_dev,
        .ino = s->st_ino,
        .nlink = s->st_nlink,
        .mode = s->st_mode,
        .uid = s->st_uid,
        .gid = s->st_gid,
        .rdev = s->st_rdev,
        .size = s->st_size,
        .blksize = s->st_blksize,
        .blocks = s->st_blocks,
        .atim = s->st_atim,
        .mtim = s->st_mtim,
        .ctim = s->st_ctim,
    };
    return 0;
}

int __hc_fstatat(int fd, const char *restrict path, struct hc_stat *restrict buf, int flag) {
    struct stat s;
    return neutral_stat(fstatat(fd, path, &s, flag), &s, buf);
}

int __hc_stat(const char *restrict path, struct hc_stat *restrict buf) {
    struct stat s;
    return neutral_stat(stat(path, &s), &s, buf);
}

int __hc_lstat(const char *restrict path, struct hc_stat *restrict buf) {
    struct stat s;
    return neutral_stat(lstat(path, &s), &s, buf);
}

int __hc_fstat(int fd, struct hc_stat *buf) {
    struct stat s;
    return neutral_stat(fstat(fd, &s), &s, buf);
}

static void on_signal(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    hc_request_signals++;
    /* Under a seccomp filter even the patching's mprotect may be fatal. */
    if (hc.sandboxed) return;
    if (__hc_poll == HC_POLL_OFF) poll_set(HC_POLL_REQUEST);
    hc_blocking_request = 1;
    blocking_cancel(ctx);
}

/* ---- Start-up: runs before any other constructor (hld links this object
 * first and this priority sorts first). ---- */

static void hcrt_start(void);

__attribute__((constructor(101))) static void hcrt_init(void) {
    /* First, and apart from what follows: code reads the thread pointer
     * once per function (aarch64: `mrs`), so hcrt_start, not inlined,
     * finds the thread-locals where they are after the move. */
    if (!getenv_raw(HC_ENV_RESTORE)) tls_move_to_program_memory();
    hcrt_start();
}

static __attribute__((noinline)) void hcrt_start(void) {
    const char *v;
    hc.main_tp = (uint64_t)__builtin_thread_pointer();
    prctl(PR_GET_NAME, hc.start_name);
    if ((v = getenv_raw(HC_ENV_CTL))) {
        int fd = (int)parse_u64(v);
        /* Out of the program's way: a high descriptor, closed on exec. */
        int hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
        if (hi >= 0) {
            close(fd);
            hc.ctl = hi;
        }
    }
    if ((v = getenv_raw(HC_ENV_DIR))) {
        size_t n = hc_strlen(v);
        if (n < sizeof hc.dir) memcpy(hc.dir, v, n + 1);
    } else {
        memcpy(hc.dir, "/tmp", 5);
    }
    if (hc.ctl >= 0) open_spare();
    if ((v = getenv_raw(HC_ENV_AT_POINT))) hc.countdown = (long)parse_u64(v);
    if ((v = getenv_raw(HC_ENV_SIGNAL))) hc.signo = (int)parse_u64(v);
    if ((v = getenv_raw("HCONTAINER_FAULT")) && !strcmp(v, "restore-exit")) hc.fault_restore_exit = 1;
    const char *restore_path = getenv_raw(HC_ENV_RESTORE);
    static char rpath[1024];
    if (restore_path && hc_strlen(restore_path) < sizeof rpath) memcpy(rpath, restore_path, hc_strlen(restore_path) + 1);
    uint64_t shadow = 64u << 20;
    if ((v = getenv_raw(HC_ENV_SHADOW))) shadow = parse_u64(v) << 20;
    strip_env();
    /* Started plainly: `hcontainer adopt` can still reach the program. */
    if (hc.ctl < 0 && !restore_path && hc.signo <= 0) hc.signo = HC_ADOPT_SIGNAL;
    if (hc.signo > 0) {
        struct sigaction sa = {0};
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_RESTART | SA_SIGINFO;
        sigaction(hc.signo, &sa, 0);
    }
    if (restore_path) {
        restore(rpath); /* does not return */
    }
    find_argv_area();
    /* The main thread's shadow stack, with a guard page above it. */
    void *s = mmap(0, shadow + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED) {
        say("cannot allocate the shadow stack");
        _exit(70);
    }
    mprotect((char *)s + shadow, 4096, PROT_NONE);
    hc.shadow_base = (uint64_t)s;
    hc.shadow_size = shadow + 4096;
    __hc_ssp = s;
    if (hc.countdown > 0) poll_set(HC_POLL_REQUEST);
}
