#include "ctl/vmdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl/entry.h"
#include "mem/guest_mem.h"

/* The files a VM directory may hold; removing a VM removes these and
 * nothing else (rmdir then fails on anything foreign, which is reported). */
static const char *const vm_files[] = { "ctl", "entry", "entry.tmp", "mem", "lock" };
#define NFILES (sizeof(vm_files) / sizeof(vm_files[0]))

#define ENTRY_MAX_BYTES (256 * 1024)

static const char *const role_names[] = { "khyve", "loader", "khyvectl" };

int ctl_check_name(const char *name, char *err, size_t errlen)
{
	size_t n = strlen(name);
	const char *why = NULL;
	if (n == 0)
		why = "empty";
	else if (n > CTL_NAME_MAX)
		why = "longer than 31 characters";
	else if (name[0] == '.')
		why = "starts with '.'";
	else if (!strcmp(name, "locks"))
		why = "reserved (disk image locks)";
	else
		for (size_t i = 0; i < n && !why; i++) {
			unsigned char c = (unsigned char)name[i];
			if (c == '/')
				why = "contains '/'";
			else if (c <= ' ' || c >= 0x7f)
				why = "contains a space or a non-printable character";
		}
	if (!why)
		return 0;
	/* Print the name safely: it may hold anything. */
	char shown[40];
	size_t j = 0;
	for (size_t i = 0; name[i] && j + 1 < sizeof(shown); i++) {
		unsigned char c = (unsigned char)name[i];
		shown[j++] = (c < ' ' || c >= 0x7f) ? '?' : (char)c;
	}
	shown[j] = '\0';
	snprintf(err, errlen, "'%s%s' is not a valid VM name (%s; 1-31 printable characters, no '/', "
		 "not starting with '.')", shown, name[j] ? "..." : "", why);
	return -EINVAL;
}

const char *ctl_rundir(char *buf, size_t len)
{
	const char *env = getenv("KHYVE_RUNDIR");
	if (env && *env)
		snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/khyve");
	else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
		snprintf(buf, len, "%s/khyve", env);
	else
		snprintf(buf, len, "/tmp/khyve-%u", (unsigned)geteuid());
	return buf;
}

/* mkdir -p, the last component 0700. */
int ctl_mkdirs(const char *path)
{
	char tmp[512];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ctl_rundir_ready(bool create, char *path, size_t len, char *err, size_t errlen)
{
	ctl_rundir(path, len);
	int r;
	if (create && (r = ctl_mkdirs(path))) {
		snprintf(err, errlen, "cannot create the runtime directory %s: %s", path, strerror(-r));
		return r;
	}
	struct stat st;
	if (lstat(path, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "the runtime directory %s: %s", path, strerror(errno));
		return r;
	}
	/* Made by someone else (a shared /tmp), or open to others: what is in
	 * it (sockets, lock notes we write through) could be theirs. */
	uid_t me = geteuid();
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "the runtime directory %s is %s, not a directory; refusing to use it "
			 "(remove it, or set KHYVE_RUNDIR)", path, S_ISLNK(st.st_mode) ? "a symlink" : "a file");
		return -ENOTDIR;
	}
	if (st.st_uid != me) {
		snprintf(err, errlen, "the runtime directory %s belongs to uid %u, not to uid %u; refusing to "
			 "use it (remove it, or set KHYVE_RUNDIR)", path, (unsigned)st.st_uid, (unsigned)me);
		return -EPERM;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "the runtime directory %s has mode %04o; refusing to use it: it must be "
			 "private to its owner (chmod 700 %s)", path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

void ctl_vm_path(const struct ctl_vm *vm, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", vm->dir, file);
}

static bool pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* What the lock file says: "key=value" lines. */
static void parse_lock_text(const char *text, struct ctl_vm_status *st)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		char line[128];
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), p);
		if (!strncmp(line, "pid=", 4))
			st->pid = atoi(line + 4);
		else if (!strncmp(line, "role=", 5))
			snprintf(st->role, sizeof(st->role), "%.15s", line + 5);
		else if (!strncmp(line, "mem=", 4))
			st->mem = strtoull(line + 4, NULL, 10);
		else if (!strncmp(line, "cpus=", 5))
			st->cpus = (unsigned)strtoul(line + 5, NULL, 10);
		p = nl ? nl + 1 : p + n;
	}
}

static void read_lock_text(int fd, struct ctl_vm_status *st)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	parse_lock_text(buf, st);
}

static void write_lock_text(int fd, const char *text)
{
	if (ftruncate(fd, 0) == 0) {
		ssize_t w = pwrite(fd, text, strlen(text), 0);
		(void)w;
	}
}

static const char *role_text(const struct ctl_vm_status *st)
{
	return st->role[0] ? st->role : "another program";
}

/* The lock is taken: say by whom. The holder writes its pid right after
 * taking the lock; if the file still names a dead process (the window
 * between the two), look again a few times. */
static void busy_error(int fd, const char *name, char *err, size_t errlen)
{
	struct ctl_vm_status st;
	for (int i = 0; i < 100; i++) {
		memset(&st, 0, sizeof(st));
		read_lock_text(fd, &st);
		if (pid_alive(st.pid))
			break;
		usleep(2000);
	}
	if (pid_alive(st.pid))
		snprintf(err, errlen, "%s: busy: in use by %s (pid %d)", name, role_text(&st), st.pid);
	else
		snprintf(err, errlen, "%s: busy: in use by another process", name);
}

static int remove_files(int dir_fd)
{
	for (size_t i = 0; i < NFILES; i++)
		if (strcmp(vm_files[i], "lock"))
			unlinkat(dir_fd, vm_files[i], 0);
	return 0;
}

int ctl_vm_open(const char *name, unsigned flags, enum ctl_role role, struct ctl_vm *vm,
		char *err, size_t errlen)
{
	memset(vm, 0, sizeof(*vm));
	vm->dir_fd = vm->lock_fd = -1;
	int r = ctl_check_name(name, err, errlen);
	if (r)
		return r;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	vm->role = role;
	char rundir[320], why[512];
	ctl_rundir(rundir, sizeof(rundir));
	if (snprintf(vm->dir, sizeof(vm->dir), "%s/%s", rundir, name) >= (int)sizeof(vm->dir)) {
		snprintf(err, errlen, "%s: the runtime directory's path is too long", name);
		return -ENAMETOOLONG;
	}
	if ((r = ctl_rundir_ready(flags & CTL_OPEN_CREATE, rundir, sizeof(rundir), why, sizeof(why)))) {
		if (r == -ENOENT)
			snprintf(err, errlen, "%s: no such VM", name);
		else
			snprintf(err, errlen, "%s: %s", name, why);
		return r;
	}
	if (flags & CTL_OPEN_CREATE) {
		if (mkdir(vm->dir, 0700) == 0) {
			vm->fresh = true;
		} else if (errno != EEXIST) {
			r = -errno;
			snprintf(err, errlen, "%s: cannot create %s: %s", name, vm->dir, strerror(errno));
			return r;
		} else if (flags & CTL_OPEN_EXCL) {
			snprintf(err, errlen, "%s: already exists", name);
			return -EEXIST;
		}
	}
	vm->dir_fd = open(vm->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (vm->dir_fd < 0) {
		r = -errno;
		if (errno == ENOENT)
			snprintf(err, errlen, "%s: no such VM", name);
		else
			snprintf(err, errlen, "%s: %s: %s", name, vm->dir, strerror(errno));
		goto fail;
	}
	vm->lock_fd = openat(vm->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (vm->lock_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s/lock: %s", name, vm->dir, strerror(errno));
		goto fail;
	}
	/* A look by ctl_vm_status (khyvectl --list) holds a shared lock for
	 * a moment: only a lock still held after a while is a holder. */
	int locked;
	for (int tries = 0;; tries++) {
		locked = flock(vm->lock_fd, LOCK_EX | LOCK_NB);
		if (locked == 0 || errno != EWOULDBLOCK || tries == 50)
			break;
		usleep(2000);
	}
	if (locked < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (r == -EBUSY)
			busy_error(vm->lock_fd, name, err, errlen);
		else
			snprintf(err, errlen, "%s: locking: %s", name, strerror(errno));
		goto fail;
	}
	/* A directory removed by a destroyer between our open and our lock. */
	struct stat a, b;
	if (fstat(vm->dir_fd, &a) < 0 || stat(vm->dir, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev || a.st_nlink == 0) {
		r = -ENOENT;
		snprintf(err, errlen, "%s: no such VM", name);
		goto fail;
	}
	struct ctl_vm_status old = { 0 };
	ssize_t n = pread(vm->lock_fd, vm->stale_text, sizeof(vm->stale_text) - 1, 0);
	vm->stale_text[n > 0 ? n : 0] = '\0';
	parse_lock_text(vm->stale_text, &old);
	vm->was_stale = old.pid != 0;
	ctl_vm_describe(vm, NULL);
	return 0;
fail:
	if (vm->lock_fd >= 0)
		close(vm->lock_fd);
	if (vm->fresh && vm->dir_fd >= 0) {
		unlinkat(vm->dir_fd, "lock", 0);
		rmdir(vm->dir);
	} else if (vm->fresh) {
		rmdir(vm->dir);
	}
	if (vm->dir_fd >= 0)
		close(vm->dir_fd);
	vm->dir_fd = vm->lock_fd = -1;
	return r;
}

void ctl_vm_describe(struct ctl_vm *vm, const char *lines)
{
	char text[512];
	snprintf(text, sizeof(text), "pid=%d\nrole=%s\n%s", (int)getpid(), role_names[vm->role],
		 lines ? lines : "");
	write_lock_text(vm->lock_fd, text);
}

void ctl_vm_close(struct ctl_vm *vm)
{
	if (vm->lock_fd >= 0) {
		/* khyvectl looking at a stale VM leaves it stale: only a new
		 * holder of its own (khyve, a loader) or --destroy ends that. */
		write_lock_text(vm->lock_fd,
				vm->role == CTL_ROLE_CTL && vm->was_stale ? vm->stale_text : "");
		close(vm->lock_fd);
	}
	if (vm->dir_fd >= 0)
		close(vm->dir_fd);
	vm->lock_fd = vm->dir_fd = -1;
}

void ctl_vm_abandon(struct ctl_vm *vm)
{
	char err[16];
	if (vm->fresh && vm->lock_fd >= 0)
		ctl_vm_remove(vm, err, sizeof(err));
	else
		ctl_vm_close(vm);
}

int ctl_vm_remove(struct ctl_vm *vm, char *err, size_t errlen)
{
	int r = 0;
	remove_files(vm->dir_fd);
	unlinkat(vm->dir_fd, "lock", 0);
	if (rmdir(vm->dir) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: removing %s: %s", vm->name, vm->dir, strerror(errno));
	}
	ctl_vm_close(vm);
	return r;
}

/* ---- memory ---- */

int ctl_vm_mem_create(struct ctl_vm *vm, uint64_t size, struct guest_mem *gm, char *err,
		      size_t errlen)
{
	/* Emptied first: pages of an earlier load do not survive into this
	 * one (and a sparse file costs only what is written). */
	int fd = openat(vm->dir_fd, "mem", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: creating %s/mem: %s", vm->name, vm->dir, strerror(e));
		return -e;
	}
	int r = 0;
	if (ftruncate(fd, (off_t)size) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: sizing %s/mem: %s", vm->name, vm->dir, strerror(errno));
	} else if ((r = guest_mem_create_from_fd(gm, size, fd, true))) {
		snprintf(err, errlen, "%s: mapping %s/mem: %s", vm->name, vm->dir, strerror(-r));
	}
	close(fd);
	if (r)
		unlinkat(vm->dir_fd, "mem", 0);
	return r;
}

int ctl_vm_mem_open(struct ctl_vm *vm, int *fd, uint64_t *size, char *err, size_t errlen)
{
	*fd = openat(vm->dir_fd, "mem", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (*fd < 0 || fstat(*fd, &st) < 0) {
		int e = errno;
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		snprintf(err, errlen, "%s: %s/mem: %s", vm->name, vm->dir, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		snprintf(err, errlen, "%s: %s/mem is not a file", vm->name, vm->dir);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

/* ---- entry ---- */

int ctl_vm_write_entry(struct ctl_vm *vm, const struct ctl_entry *e, char *err, size_t errlen)
{
	size_t need = ctl_entry_format(e, NULL, 0) + 1;
	char *text = malloc(need);
	if (!text) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ctl_entry_format(e, text, need);
	int r = 0;
	int fd = openat(vm->dir_fd, "entry.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			0600);
	size_t len = strlen(text);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: writing %s/entry: %s", vm->name, vm->dir, strerror(-r));
	}
	if (fd >= 0 && close(fd) < 0 && !r) {
		r = -errno;
		snprintf(err, errlen, "%s: writing %s/entry: %s", vm->name, vm->dir, strerror(errno));
	}
	if (!r && renameat(vm->dir_fd, "entry.tmp", vm->dir_fd, "entry") < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: writing %s/entry: %s", vm->name, vm->dir, strerror(errno));
	}
	if (r)
		unlinkat(vm->dir_fd, "entry.tmp", 0);
	free(text);
	return r;
}

static int read_entry_at(int dir_fd, const char *name, const char *dir, struct ctl_entry *e,
			 char *err, size_t errlen)
{
	int fd = openat(dir_fd, "entry", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e2 = errno;
		snprintf(err, errlen, "%s: %s/entry: %s", name, dir, strerror(e2));
		return -e2;
	}
	char *buf = malloc(ENTRY_MAX_BYTES);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t len = 0;
	ssize_t n;
	while (len < ENTRY_MAX_BYTES && (n = read(fd, buf + len, ENTRY_MAX_BYTES - len)) > 0)
		len += (size_t)n;
	close(fd);
	char why[300];
	int r = ctl_entry_parse(buf, len, e, why, sizeof(why));
	if (r)
		snprintf(err, errlen, "%s: %s/entry: %s", name, dir, why);
	free(buf);
	return r;
}

int ctl_vm_read_entry(struct ctl_vm *vm, struct ctl_entry *e, char *err, size_t errlen)
{
	return read_entry_at(vm->dir_fd, vm->name, vm->dir, e, err, errlen);
}

/* ---- status without the lock ---- */

const char *ctl_vm_state_name(enum ctl_vm_state s)
{
	static const char *const names[] = { "created", "prepared", "running", "busy", "stale" };
	return (unsigned)s < 5 ? names[s] : "?";
}

/* The directory of an existing VM, opened (its path in dir): a
 * descriptor, or -errno with err saying why ("no such VM" when it or the
 * runtime directory is missing). */
static int open_vm_dir(const char *name, char *dir, size_t dirlen, char *err, size_t errlen)
{
	int r = ctl_check_name(name, err, errlen);
	if (r)
		return r;
	char rundir[320], why[512];
	if ((r = ctl_rundir_ready(false, rundir, sizeof(rundir), why, sizeof(why)))) {
		if (r == -ENOENT)
			snprintf(err, errlen, "%s: no such VM", name);
		else
			snprintf(err, errlen, "%s: %s", name, why);
		return r;
	}
	snprintf(dir, dirlen, "%s/%s", rundir, name);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		r = -errno;
		if (errno == ENOENT)
			snprintf(err, errlen, "%s: no such VM", name);
		else
			snprintf(err, errlen, "%s: %s: %s", name, dir, strerror(errno));
		return r;
	}
	return dfd;
}

int ctl_vm_status(const char *name, struct ctl_vm_status *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	char dir[400];
	int dfd = open_vm_dir(name, dir, sizeof(dir), err, errlen);
	if (dfd < 0)
		return dfd;
	int lfd = openat(dfd, "lock", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	bool held = false;
	if (lfd >= 0) {
		if (flock(lfd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK)
			held = true;
		read_lock_text(lfd, st);
		close(lfd);
	}
	if (held) {
		st->state = !strcmp(st->role, "khyve") ? CTL_VM_RUNNING : CTL_VM_BUSY;
	} else if (st->pid) {
		/* Free, yet the file names a holder: it died holding it. */
		st->state = CTL_VM_STALE;
	} else {
		struct stat m;
		st->state = faccessat(dfd, "entry", F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? CTL_VM_PREPARED
										    : CTL_VM_CREATED;
		if (fstatat(dfd, "mem", &m, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(m.st_mode))
			st->mem = (uint64_t)m.st_size;
		else
			st->state = CTL_VM_CREATED;
		st->cpus = 0;
	}
	close(dfd);
	return 0;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int ctl_vm_list(void (*fn)(void *opaque, const char *name, const struct ctl_vm_status *st),
		void *opaque, char *why, size_t whylen)
{
	char rundir[320];
	int r = ctl_rundir_ready(false, rundir, sizeof(rundir), why, whylen);
	if (r)
		return r == -ENOENT ? 0 : r;
	DIR *d = opendir(rundir);
	if (!d) {
		r = -errno;
		snprintf(why, whylen, "%s: %s", rundir, strerror(errno));
		return r == -ENOENT ? 0 : r;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	char err[256];
	while ((de = readdir(d))) {
		if (ctl_check_name(de->d_name, err, sizeof(err)))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		struct ctl_vm_status st;
		if (ctl_vm_status(names[i], &st, err, sizeof(err)) == 0)
			fn(opaque, names[i], &st);
		free(names[i]);
	}
	free(names);
	return 0;
}

/* ---- the socket ---- */

/* sockaddr_un for DIR/ctl; through /proc/self/fd/N/ctl when the path is
 * too long for sun_path. */
static int ctl_addr(const char *dir, int dir_fd, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/ctl", dir) < (int)sizeof(sa->sun_path))
		return 0;
	if (dir_fd < 0)
		return -ENAMETOOLONG;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/ctl", dir_fd);
	return 0;
}

int ctl_socket_listen(struct ctl_vm *vm, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int r = ctl_addr(vm->dir, vm->dir_fd, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || r) {
		r = r ? r : -errno;
		goto fail;
	}
	/* One left by a khyve that died: we hold the lock, so it is dead. */
	unlinkat(vm->dir_fd, "ctl", 0);
	/* Mode 0600 from the start: no window in which others may connect. */
	mode_t old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	umask(old);
	if (r < 0 || listen(fd, 8) < 0) {
		r = -(r < 0 ? e : errno);
		goto fail;
	}
	fchmodat(vm->dir_fd, "ctl", 0600, 0);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: the control socket %s/ctl: %s", vm->name, vm->dir, strerror(-r));
	return r;
}

int ctl_socket_connect(const char *name, char *err, size_t errlen)
{
	char dir[400];
	int r, dfd = open_vm_dir(name, dir, sizeof(dir), err, errlen);
	if (dfd < 0)
		return dfd;
	struct sockaddr_un sa;
	int fd = -1;
	if ((r = ctl_addr(dir, dfd, &sa)) == 0) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			r = -errno;
	}
	close(dfd);
	if (r) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "%s: cannot reach its khyve (%s/ctl): %s", name, dir, strerror(-r));
		return r;
	}
	return fd;
}
