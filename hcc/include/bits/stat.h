/* hcc: one struct stat layout on every ISA (x86_64's, written with types of
 * the same width everywhere), so a struct stat in memory — a global, a heap
 * block, a stack slot — means the same after a migration. hcc redirects the
 * program's stat, lstat, fstat and fstatat calls to the runtime, which
 * converts from the kernel's layout (runtime/native/hcrt.c). Replaces musl's
 * per-ISA bits/stat.h. */
struct stat {
	dev_t st_dev;
	ino_t st_ino;
	unsigned long st_nlink;

	mode_t st_mode;
	uid_t st_uid;
	gid_t st_gid;
	unsigned int __pad0;
	dev_t st_rdev;
	off_t st_size;
	long st_blksize;
	blkcnt_t st_blocks;

	struct timespec st_atim;
	struct timespec st_mtim;
	struct timespec st_ctim;
	long __unused[3];
};
