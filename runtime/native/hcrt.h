/*
 * hcontainer in-process runtime: the ABI shared with code hcc generates
 * (hcc/src/instrument/mod.rs, module `abi`) and with the hcontainer CLI
 * (docs/FORMATS.md: dump, snapshot and control protocol).
 *
 * This code runs inside the migrating process, is compiled per ISA by
 * clang-22 (never instrumented), and must not call malloc or stdio: it runs
 * before the program's heap exists (restore) and while the program's stdio
 * buffers hold data that belongs to the program (dump).
 */
#ifndef HCRT_H
#define HCRT_H

#include <stdint.h>
#include <stddef.h>

/* __hc_poll values. */
#define HC_POLL_OFF 0
#define HC_POLL_REQUEST 1 /* a migration point should run */
#define HC_POLL_RESTORE 2 /* frames are being re-entered from a snapshot */

/* Bytes of __hc_poll_record (hcc: abi::POLL_RECORD_SIZE); polls with a
 * larger frame record use a buffer in their own frame. */
#define HC_POLL_RECORD_SIZE 16384

/* Register file saved by __hc_migrate_point (asm) in this exact layout.
 * gpr is indexed by DWARF register number (x86_64: rax=0 .. r15=15;
 * aarch64: x0..x30 = 0..30, sp = 31); vec by vector register number. */
struct hc_regs {
    uint64_t gpr[32];
    uint64_t pc; /* return address of the migration-point call: the site */
    uint64_t sp; /* stack pointer after that call returns */
    unsigned char vec[32][16];
};
_Static_assert(sizeof(struct hc_regs) == 784, "asm stubs depend on this layout");

/* Dump: magic, then records (kind, length, payload padded to 8). */
#define HC_DUMP_MAGIC "HCDUMP\0\0"
#define HC_DUMP_VERSION 10
#define HC_SNAP_MAGIC "HCSNAP\0\0"
#define HC_SNAP_VERSION 12

enum hc_record {
    HC_REC_END = 0,
    HC_REC_REGS = 1,    /* struct hc_regs */
    HC_REC_REGION = 2,  /* struct hc_region_hdr + data */
    HC_REC_TLS = 3,     /* u64 addr, u64 size, bytes */
    HC_REC_FDS = 4,     /* u32 count, u32 pad, then hc_fd_hdr + path each */
    HC_REC_MISC = 5,    /* struct hc_misc */
    HC_REC_FRAMES = 6,  /* snapshot only: u32 count, u32 pad, frame records */
    HC_REC_SIGNALS = 7, /* struct hc_signals + hc_sigaction each */
    HC_REC_MEMORY = 8,  /* snapshot only: u32 path_len, u32 pad, path of the memory file */
};

/* Where a region's data is. */
enum hc_region_source {
    HC_SOURCE_INLINE = 0, /* after the header (and data_skip zero bytes) */
    HC_SOURCE_MEMORY = 1, /* in the memory file, at the u64 offset after the header */
};

/* Region data of this size or more, of a page-aligned region, starts on a
 * page of the file (dumps and snapshots), so restore can map it. */
#define HC_MAP_THRESHOLD (64u << 10)

enum hc_region_kind {
    HC_REGION_IMAGE = 1,  /* inside the program's aligned data: written in place */
    HC_REGION_ANON = 2,   /* heap, mmaps: mapped at the same address */
    HC_REGION_STACK = 3,  /* dump only: the native stack, for the unwinder */
    HC_REGION_ARGV = 4,   /* the main stack's argv/env area, mapped as data */
    HC_REGION_SHADOW = 5, /* the shadow stack: only [addr, addr+data_len) is used */
    HC_REGION_FILE = 6,   /* a file the program mapped: data = offset, flags, path */
    HC_REGION_SHARED = 7, /* shared memory no path maps again (MAP_SHARED anonymous, a
                             deleted file's): data, restored as shared anonymous memory */
    HC_REGION_SHARED_FD = 8, /* the same, of a file the program still has open (memfd):
                                data = offset, dev, ino; mapped again from that descriptor */
};

struct hc_region_hdr {
    uint64_t addr;
    uint64_t map_len;  /* bytes to map */
    uint64_t data_len; /* bytes that follow (the rest is zero) */
    uint32_t prot;     /* PROT_* */
    uint32_t kind;     /* enum hc_region_kind */
    uint32_t data_skip; /* zero bytes before the data (large data starts on a page) */
    uint32_t source;    /* enum hc_region_source (dumps: always inline) */
};

/* Locks a descriptor holds. flock, OFD and lease locks belong to the open
 * file, which a migration hands over as it is (SCM_RIGHTS); POSIX record
 * locks belong to the process, so no dump is made while one is held. */
enum hc_fd_locks {
    HC_LOCK_OPEN_FILE = 1,
    HC_LOCK_PROCESS = 2,
};

struct hc_fd_hdr {
    int32_t fd;
    int32_t flags;    /* F_GETFL */
    int32_t fdflags;  /* F_GETFD */
    uint32_t mode;    /* st_mode */
    int64_t offset;   /* -1 if not seekable */
    uint64_t dev;
    uint64_t ino;
    uint32_t path_len;
    uint32_t shares;  /* 1 + the earlier descriptor whose open file it is (dup), 0: none */
    uint32_t locks;   /* enum hc_fd_locks: the locks it holds */
    uint32_t pad;
    /* path bytes, padded to 8 */
};

/* After the working directory in a MISC record, process state musl and the
 * kernel keep: the locale, per category (LC_CTYPE .. LC_MESSAGES, 0-5) by
 * name, and the main thread's own (uselocale) if it has one; the resource
 * limits. */
struct hc_process {
    uint64_t thread; /* a locale_t, or 0: the global one */
    char names[6][24];
    uint64_t rlimits[16][2]; /* then each resource limit: soft, hard */
    char name[16]; /* the name the program gave itself (PR_SET_NAME), or empty */
    uint64_t cpu_user_ns, cpu_sys_ns; /* CPU time used so far (all hops) */
    /* Who the program is: a server started as root that dropped to
     * another user must not be root again after a migration. */
    uint32_t uid[3], gid[3]; /* real, effective, saved */
    uint32_t ngroups;        /* supplementary groups (at most 32 kept) */
    uint32_t no_new_privs;   /* PR_SET_NO_NEW_PRIVS */
    uint32_t groups[32];
    /* How the kernel schedules and treats the process (CRIU carries the
     * same): a niced batch job must not come back at nice 0, a service
     * that asked for SIGTERM when its parent dies must still get it. */
    uint32_t attrs_known; /* enum hc_attr bits: what the source could read */
    int32_t nice;
    uint32_t sched_policy; /* with SCHED_RESET_ON_FORK */
    uint32_t sched_priority;
    int32_t pdeathsig;     /* PR_SET_PDEATHSIG */
    uint32_t dumpable;     /* PR_SET_DUMPABLE */
    uint32_t subreaper;    /* PR_SET_CHILD_SUBREAPER */
    int32_t oom_score_adj; /* /proc/self/oom_score_adj */
    uint64_t timerslack_ns; /* PR_SET_TIMERSLACK */
    uint64_t affinity[16];  /* CPUs 0-1023 it may run on, bit n: CPU n */
    uint32_t session_leader; /* it called setsid(): a daemon, apart from any terminal */
    uint32_t pad;
};
_Static_assert(sizeof(struct hc_process) == 776, "metadata/src/image.rs reads this layout");

enum hc_attr {
    HC_ATTR_NICE = 1,
    HC_ATTR_SCHED = 2,
    HC_ATTR_PDEATHSIG = 4,
    HC_ATTR_DUMPABLE = 8,
    HC_ATTR_SUBREAPER = 16,
    HC_ATTR_OOM = 32,
    HC_ATTR_TIMERSLACK = 64,
    HC_ATTR_AFFINITY = 128,
    HC_ATTR_SESSION = 256,
};

struct hc_misc {
    int32_t err;    /* errno at the migration point */
    uint32_t umask; /* the process's umask */
    uint64_t argv_start; /* lowest address of the argv/env area */
    uint64_t stack_end;  /* top of the main stack */
    uint64_t shadow_base, shadow_size;
    uint64_t dump_ns; /* filled by the dumper: time spent dumping */
    uint32_t cwd_len; /* then the working directory's path, padded to 8 */
    uint32_t pad;
};

/* Signal state: blocked mask, interval timers (ITIMER_REAL, _VIRTUAL, _PROF:
 * interval and remaining time in microseconds), non-default dispositions. */
struct hc_signals {
    uint64_t blocked; /* bit n-1: signal n */
    uint64_t timers[3][2];
    uint32_t count;
    uint32_t pending; /* standard signals pending while blocked, bit n-1: raised again at resume */
};
struct hc_sigaction {
    uint32_t signo;
    uint32_t flags;   /* SA_*, without SA_RESTORER (musl sets its own) */
    uint64_t handler; /* same address in every variant; 1 = SIG_IGN */
    uint64_t mask;
};
/* After the actions: the alternate signal stack (size 0: none). */
struct hc_altstack {
    uint64_t sp, size;
};

/* Frame record in a snapshot: values follow in the canonical layout. */
struct hc_frame {
    uint64_t fn;
    uint32_t site;
    uint32_t size;
    /* unsigned char values[size]; (size is a multiple of 8) */
};

/* A blocking call (read, accept, poll, ...) a migration interrupted, in
 * migrated memory (docs/FORMATS.md §5 "Blocking calls"): the destination
 * makes it again when the restored caller re-issues its call. op: hcrt.c
 * HC_BLOCKING_CALLS, 0: none. */
#define HC_PENDING_PTRS 32
struct hc_pending {
    uint32_t op;
    uint32_t nptrs; /* a scanf: how many of ptr are its pointers */
    uint64_t arg[6]; /* the argument registers as the caller set them */
    uint64_t left[2]; /* a sleep: seconds and nanoseconds still to sleep */
    uint64_t ptr[HC_PENDING_PTRS]; /* a scanf: the pointers after its format */
};

/* Environment the hcontainer CLI passes. */
#define HC_ENV_CTL "HCONTAINER_CTL_FD"
#define HC_ENV_DIR "HCONTAINER_DIR"
#define HC_ENV_AT_POINT "HCONTAINER_AT_POINT"
#define HC_ENV_SIGNAL "HCONTAINER_SIGNAL"
#define HC_ENV_RESTORE "HCONTAINER_RESTORE"
#define HC_ENV_SHADOW "HCONTAINER_SHADOW_STACK"

/* A program started without hcontainer listens for this signal (the one
 * hcontainer always uses, SIGSTKFLT): the next migration point connects to
 * the abstract Unix socket HC_ADOPT_NAME<pid>, where `hcontainer adopt`
 * waits to supervise it (docs/FORMATS.md §9). */
#define HC_ADOPT_SIGNAL SIGSTKFLT
#define HC_ADOPT_NAME "hcontainer-adopt-"

/* Called by instrumented code. */
extern volatile int __hc_poll;
extern __thread char *__hc_ssp;
extern __thread const void *__hc_unmigratable;
void __hc_migrate_point(void); /* asm: preserve_all, saves hc_regs */
void *__hc_resume_frame(void *fn);
int __hc_resume_site(void);
void *__hc_resume_take(void);
void __hc_resume_bad(void *fn, int site) __attribute__((noreturn));
extern const unsigned char __hc_zero_page[4096];
extern const unsigned char __hc_build_id[16];

/* Called by the asm stub. */
void __hc_migrate_point_c(struct hc_regs *r);

#endif
