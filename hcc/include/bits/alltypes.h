/* hcc: nlink_t and blksize_t as wide as x86_64's on every ISA (aarch64's musl
 * makes them int-sized), so a struct holding one has one layout on every ISA,
 * as hcc's struct stat does: GNU tar keeps { dev_t, ino_t, nlink_t, name }
 * entries of its hard-link table on the heap, and migrated they must read
 * the same. musl's own per-ISA alltypes.h follows for everything else; like
 * it, no include guard (musl includes it once per set of __NEED_ macros).
 * libc passes these types only inside struct stat, which hcc converts. */
#if defined(__NEED_nlink_t) && !defined(__DEFINED_nlink_t)
typedef unsigned long nlink_t;
#define __DEFINED_nlink_t
#endif
#if defined(__NEED_blksize_t) && !defined(__DEFINED_blksize_t)
typedef long blksize_t;
#define __DEFINED_blksize_t
#endif
#include_next <bits/alltypes.h>
