/*
 * nsenter: the only C in lkc. It runs as an ELF constructor, before the Go
 * runtime starts threads, because setns(2) into a mount or user namespace
 * and unshare(CLONE_NEWUSER) are refused to a multi-threaded process.
 *
 * It does nothing unless _LKC_INIT_SYNC names a SOCK_SEQPACKET fd. Then it
 * reads one request from the parent (lkc create/exec), one instruction a line:
 *   cgroup <file>        write "0" to this v1 tasks file: the process moves
 *                        itself, which skips the global lock (and the RCU
 *                        grace period, ~10 ms) a move by pid would take
 *   defer cgroup         the cgroup lines come later, in a second message
 *                        to the process that goes on into Go, once it is in
 *                        its namespaces: the parent creates the cgroups while
 *                        this process unshares and forks (never with a user
 *                        namespace; a new cgroup namespace waits for the
 *                        move, see cgroups_after_fork)
 *   join <flag> <path>   setns into the namespace file at <path>, in order;
 *                        setns refuses a file of another type than the
 *                        CLONE_NEW* <flag> (decimal)
 *   chroot <dir>         once in the namespaces, make <dir> (opened before
 *                        them) the root: exec into a container that shares
 *                        its caller's mount namespace
 *   unshare <flags>      unshare these CLONE_NEW* flags (decimal)
 *   timeoffset <clock> <secs> <nanos>   offsets for a new time namespace
 *   fork                 fork once more, so new pid/time namespaces apply
 *   exec                 after the fork, finish an `lkc exec` here (below)
 *                        instead of going on into Go
 * and answers with messages of its own:
 *   maps                 a new user namespace waits for its id maps; the
 *                        parent writes them and answers "ok"
 *   pid <n>              the pid (in the parent's pid namespace) of the
 *                        process that goes on into the Go runtime
 *   error <text>         what failed; the process then exits
 *
 * Why `exec` is done in C: a process joining a running container needs
 * nothing of Go's once it is in the namespaces, and starting the Go runtime
 * (threads, CPUID traps on this kind of VM, page faults) was the largest
 * part of `lkc exec`'s latency. So when the process is plain -- no terminal,
 * no seccomp notify listener, no rlimits or oom score to set -- the parent
 * sends, after "pid", a plan: NUL-terminated records, one per field,
 *   arg <s>  env <s>     argv and envp, in order
 *   cwd <dir>            working directory
 *   uid <n>  gid <n>  group <n>   credentials; group repeats
 *   umask <octal>        only when set
 *   caps <bnd> <eff> <perm> <inh> <amb>   capability sets, hex masks
 *   nnp                  no_new_privs
 *   preserve <n>         fds 3..3+n-1 stay open
 *   seccomp <flags>      a BPF program follows, in a message of its own
 * and this process carries it out in the order internal/initproc does for
 * the Go path, which stays for everything else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#include "errnos.h"

#define MAX_JOINS 16
#define REQ_MAX 8192

static int sync_fd = -1;
/* Once the parent was told "ready", failures go to stderr, as in Go's init. */
static int told_ready;

/*
 * errtext words errno e as Go does (errnos.h is generated from Go's table),
 * so a failure reads the same whichever of the constructor and Go's init
 * met it.
 */
static const char *errtext(int e)
{
	static char unknown[32];
	int n = sizeof(go_errno_text) / sizeof(go_errno_text[0]);

	if (e > 0 && e < n && go_errno_text[e] != NULL)
		return go_errno_text[e];
	snprintf(unknown, sizeof(unknown), "errno %d", e);
	return unknown;
}

static void say(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)send(sync_fd, msg, strlen(msg), MSG_NOSIGNAL);
}

static void die(const char *what)
{
	if (told_ready) {
		fprintf(stderr, "lkc init: %s: %s\n", what, errtext(errno));
		_exit(127);
	}
	say("error %s: %s", what, errtext(errno));
	_exit(1);
}

static void await_ok(void)
{
	char buf[8];
	ssize_t n = recv(sync_fd, buf, sizeof(buf), 0);

	if (n != 2 || memcmp(buf, "ok", 2) != 0)
		_exit(1); /* the parent went away or refused: nothing to report to */
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		die(path);
	if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		die(path);
	close(fd);
}

/* become_root makes the process uid/gid 0 of the user namespace it is in. */
static void become_root(void)
{
	if (setresgid(0, 0, 0) < 0)
		die("setresgid(0) in the user namespace");
	if (setresuid(0, 0, 0) < 0)
		die("setresuid(0) in the user namespace");
}

#define MAX_CGROUPS 32

struct request {
	char *cgroups[MAX_CGROUPS];
	int ncgroups;
	int defer_cgroups;
	char *joins[MAX_JOINS];
	int join_flags[MAX_JOINS];
	int njoins;
	char *chroot;
	int unshare_flags;
	char offsets[512];
	int fork;
	int exec;
};

static void parse(char *buf, struct request *r)
{
	char *save = NULL;

	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "cgroup ", 7) == 0 && r->ncgroups < MAX_CGROUPS) {
			r->cgroups[r->ncgroups++] = line + 7;
		} else if (strcmp(line, "defer cgroup") == 0) {
			r->defer_cgroups = 1;
		} else if (strncmp(line, "join ", 5) == 0 && r->njoins < MAX_JOINS) {
			char *path;

			r->join_flags[r->njoins] = strtol(line + 5, &path, 10);
			if (*path != ' ' || r->join_flags[r->njoins] == 0) {
				errno = EINVAL;
				die(line);
			}
			r->joins[r->njoins++] = path + 1;
		} else if (strncmp(line, "chroot ", 7) == 0) {
			r->chroot = line + 7;
		} else if (strncmp(line, "unshare ", 8) == 0) {
			r->unshare_flags = atoi(line + 8);
		} else if (strncmp(line, "timeoffset ", 11) == 0) {
			strncat(r->offsets, line + 11, sizeof(r->offsets) - strlen(r->offsets) - 2);
			strcat(r->offsets, "\n");
		} else if (strcmp(line, "fork") == 0) {
			r->fork = 1;
		} else if (strcmp(line, "exec") == 0) {
			r->exec = 1;
		} else {
			errno = EINVAL;
			die(line);
		}
	}
}

/*
 * join opens every namespace file first (a path may stop resolving once the
 * mount namespace changed), then enters them in the order given; the parent
 * puts the user namespace first and the mount namespace last.
 */
static void join(struct request *r)
{
	int fds[MAX_JOINS];
	int root = -1;

	for (int i = 0; i < r->njoins; i++) {
		fds[i] = open(r->joins[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die(r->joins[i]);
	}
	if (r->chroot != NULL && (root = open(r->chroot, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		die(r->chroot);
	for (int i = 0; i < r->njoins; i++) {
		if (setns(fds[i], r->join_flags[i]) < 0)
			die(r->joins[i]);
		close(fds[i]);
		if (r->join_flags[i] == CLONE_NEWUSER)
			become_root();
	}
	if (root >= 0) {
		if (fchdir(root) < 0 || chroot(".") < 0 || chdir("/") < 0)
			die(r->chroot);
		close(root);
	}
}

static void unshare_new(struct request *r)
{
	int flags = r->unshare_flags;

	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			die("unshare(CLONE_NEWUSER)");
		say("maps");
		await_ok();
		become_root();
		flags &= ~CLONE_NEWUSER;
	}
	/* A new cgroup namespace is rooted at the cgroup the process is in:
	 * with deferred cgroups it is made once the process is in them. */
	if (r->defer_cgroups)
		flags &= ~CLONE_NEWCGROUP;
	if (flags && unshare(flags) < 0)
		die("unshare");
	if ((flags & CLONE_NEWTIME) && r->offsets[0])
		write_file("/proc/self/timens_offsets", r->offsets);
}

/* receive reads one message of the parent's into buf and parses it into r. */
static void receive(char *buf, size_t size, struct request *r)
{
	ssize_t n = recv(sync_fd, buf, size - 1, 0);

	if (n <= 0)
		_exit(1); /* the parent went away: nothing to report to */
	buf[n] = '\0';
	parse(buf, r);
}

static void enter_cgroups(struct request *r)
{
	for (int i = 0; i < r->ncgroups; i++)
		write_file(r->cgroups[i], "0");
}

/*
 * cgroups_after_fork receives the deferred cgroup lines and moves the
 * process in, before the Go runtime starts a thread (a self-move through
 * "tasks" moves one thread), then makes the new cgroup namespace the
 * request asked for, rooted there. Entering after the other namespaces
 * changes nothing for the process as long as no user namespace is in the
 * way of the host's cgroup files; the parent defers only then.
 */
static void cgroups_after_fork(struct request *r)
{
	static char buf[REQ_MAX];
	struct request late = {0};

	receive(buf, sizeof(buf), &late);
	if (late.njoins || late.unshare_flags || late.fork || late.defer_cgroups || late.exec) {
		errno = EINVAL;
		die("deferred cgroup message");
	}
	enter_cgroups(&late);
	if ((r->unshare_flags & CLONE_NEWCGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		die("unshare(CLONE_NEWCGROUP)");
}

/* recv_whole reads the next message, however long, into a new buffer. */
static char *recv_whole(size_t *len)
{
	ssize_t n = recv(sync_fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
	char *buf;

	if (n <= 0)
		_exit(1); /* the parent went away: nothing to report to */
	buf = malloc(n + 1);
	if (buf == NULL)
		die("reading the exec plan");
	n = recv(sync_fd, buf, n, 0);
	if (n <= 0)
		_exit(1);
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct plan {
	char **argv, **envp;
	int argc, envc;
	const char *cwd;
	uid_t uid;
	gid_t gid, *groups;
	int ngroups;
	int umask; /* -1: inherited */
	int has_caps;
	unsigned long long caps[5]; /* bounding effective permitted inheritable ambient */
	int nnp;
	int preserve;
	int has_seccomp;
	unsigned int seccomp_flags;
	struct sock_fprog prog;
};

/* field returns the value of record rec if its key is key, else NULL. */
static const char *field(const char *rec, const char *key)
{
	size_t n = strlen(key);

	if (strncmp(rec, key, n) != 0)
		return NULL;
	if (rec[n] == ' ')
		return rec + n + 1;
	return rec[n] == '\0' ? rec + n : NULL;
}

static void parse_plan(char *buf, size_t len, struct plan *p)
{
	size_t nrec = 0;
	const char *v;

	for (size_t i = 0; i < len; i++)
		nrec += buf[i] == '\0';
	/* One slot more in envp for HOME, one for the terminating NULL. */
	p->argv = calloc(nrec + 1, sizeof(char *));
	p->envp = calloc(nrec + 2, sizeof(char *));
	p->groups = calloc(nrec + 1, sizeof(gid_t));
	if (!p->argv || !p->envp || !p->groups)
		die("parsing the exec plan");
	p->umask = -1;
	for (char *rec = buf; rec < buf + len; rec += strlen(rec) + 1) {
		if ((v = field(rec, "arg")))
			p->argv[p->argc++] = (char *)v;
		else if ((v = field(rec, "env")))
			p->envp[p->envc++] = (char *)v;
		else if ((v = field(rec, "cwd")))
			p->cwd = v;
		else if ((v = field(rec, "uid")))
			p->uid = strtoul(v, NULL, 10);
		else if ((v = field(rec, "gid")))
			p->gid = strtoul(v, NULL, 10);
		else if ((v = field(rec, "group")))
			p->groups[p->ngroups++] = strtoul(v, NULL, 10);
		else if ((v = field(rec, "umask")))
			p->umask = strtol(v, NULL, 8);
		else if ((v = field(rec, "caps")))
			p->has_caps = sscanf(v, "%llx %llx %llx %llx %llx", &p->caps[0], &p->caps[1],
					     &p->caps[2], &p->caps[3], &p->caps[4]) == 5;
		else if (field(rec, "nnp"))
			p->nnp = 1;
		else if ((v = field(rec, "preserve")))
			p->preserve = atoi(v);
		else if ((v = field(rec, "seccomp"))) {
			p->has_seccomp = 1;
			p->seccomp_flags = strtoul(v, NULL, 10);
		} else {
			errno = EINVAL;
			die(rec);
		}
	}
	if (p->argc == 0 || p->cwd == NULL) {
		errno = EINVAL;
		die("exec plan without args or cwd");
	}
}

/* executable returns 0 for an executable file, else an error worded as
 * initproc.checkExecutable's (and runc's): "stat <path>: ..." when stat
 * fails, "<path>: permission denied" when path is not executable. */
static int executable(const char *path, char *err, size_t size)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		snprintf(err, size, "stat %s: %s", path, errtext(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0) {
		snprintf(err, size, "%s: %s", path, errtext(EACCES));
		return -1;
	}
	return 0;
}

/* find_exec resolves argv[0] in the container as a shell would, with the
 * PATH of the process's own environment. */
static char *find_exec(struct plan *p)
{
	const char *name = p->argv[0];
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *cand;

	if (strchr(name, '/') != NULL) {
		char err[256];

		if (executable(name, err, sizeof(err)) < 0) {
			say("error exec \"%s\": %s", name, err);
			_exit(1);
		}
		return (char *)name;
	}
	for (int i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "PATH=", 5) == 0)
			path = p->envp[i] + 5;
	cand = malloc(strlen(path) + strlen(name) + 3);
	if (cand == NULL)
		die("looking up the executable");
	for (const char *dir = path;; dir++) {
		size_t n = strcspn(dir, ":");
		char err[256];

		if (n == 0)
			sprintf(cand, "./%s", name);
		else
			sprintf(cand, "%.*s/%s", (int)n, dir, name);
		if (executable(cand, err, sizeof(err)) == 0)
			return cand;
		dir += n;
		if (*dir == '\0')
			break;
	}
	say("error exec \"%s\": executable file not found in $PATH", name);
	_exit(1);
}

/* add_home sets HOME from the container's /etc/passwd (or "/") when the
 * environment lacks it, as runc does. */
static void add_home(struct plan *p)
{
	static char line[4096];
	const char *home = "/";
	char uid[16];
	FILE *f;

	for (int i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "HOME=", 5) == 0)
			return;
	snprintf(uid, sizeof(uid), "%u", (unsigned)p->uid);
	f = fopen("/etc/passwd", "re");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *fields[7] = {0}, *tok = line;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		/* strsep, not strtok: empty fields count. */
		while (n < 7 && (fields[n] = strsep(&tok, ":")) != NULL)
			n++;
		if (n >= 6 && strcmp(fields[2], uid) == 0 && fields[5][0] != '\0') {
			home = fields[5];
			break;
		}
	}
	p->envp[p->envc] = malloc(strlen(home) + 6);
	if (p->envp[p->envc] == NULL)
		die("setting HOME");
	sprintf(p->envp[p->envc++], "HOME=%s", home);
	if (f != NULL)
		fclose(f);
}

static void load_seccomp(struct plan *p)
{
	if (p->has_seccomp && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &p->prog) < 0)
		die("loading the seccomp filter");
}

/* set_user switches to the process's user and groups and leaves it exactly
 * the configured capabilities (initproc.setUser, for the Go path). */
static void set_user(struct plan *p)
{
	if (p->has_caps) {
		for (int c = 0; c < 64; c++) {
			if (p->caps[0] & (1ULL << c))
				continue;
			if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
				if (errno == EINVAL)
					break; /* past the kernel's last capability */
				die("dropping a capability from the bounding set");
			}
		}
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die("prctl(PR_SET_KEEPCAPS)");
	}
	if (setgroups(p->ngroups, p->groups) < 0 && (p->ngroups > 0 || errno != EPERM))
		die("setgroups");
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		die("setting gid");
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		die("setting uid");
	if (!p->has_caps)
		return;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		die("prctl(PR_SET_KEEPCAPS)");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	for (int i = 0; i < 2; i++) {
		data[i].effective = p->caps[1] >> (32 * i);
		data[i].permitted = p->caps[2] >> (32 * i);
		data[i].inheritable = p->caps[3] >> (32 * i);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset");
	for (int c = 0; c < 64; c++) {
		/* Only permitted and inheritable ones can be raised; like the Go
		 * path, runc and crun, skip the others. */
		if ((p->caps[4] & (1ULL << c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 && errno != EPERM)
			die("raising an ambient capability");
	}
}

/*
 * exec_plan finishes an `lkc exec` without Go: it receives the plan, sets
 * the process up, reports ready and execs. The seccomp filter goes in as
 * late as it can: right before execve with no_new_privs, else before the
 * credentials change (loading needs CAP_SYS_ADMIN then).
 */
static void exec_plan(void)
{
	struct plan p = {0};
	size_t len;
	char *buf = recv_whole(&len);
	char *path;

	parse_plan(buf, len, &p);
	if (p.has_seccomp) {
		size_t n;

		p.prog.filter = (struct sock_filter *)recv_whole(&n);
		p.prog.len = n / sizeof(struct sock_filter);
	}
	if (chdir(p.cwd) < 0) {
		say("error process.cwd %s: %s", p.cwd, errtext(errno));
		_exit(1);
	}
	/* Nothing of lkc's may leak into the container (CVE-2024-21626). */
	if (syscall(SYS_close_range, 3 + p.preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		die("close_range");
	path = find_exec(&p);
	add_home(&p);
	say("ready");
	told_ready = 1;
	if (p.umask >= 0)
		umask(p.umask);
	if (!p.nnp)
		load_seccomp(&p);
	set_user(&p);
	if (p.nnp) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			die("prctl(PR_SET_NO_NEW_PRIVS)");
		load_seccomp(&p);
	}
	execve(path, p.argv, p.envp);
	fprintf(stderr, "lkc init: exec %s: %s\n", path, errtext(errno));
	_exit(127);
}

__attribute__((constructor)) static void nsenter(void)
{
	static char buf[REQ_MAX];
	struct request r = {0};
	const char *env = getenv("_LKC_INIT_SYNC");

	if (env == NULL)
		return;
	sync_fd = atoi(env);
	/* Nothing of the host may be read through /proc/<pid> of this process. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("prctl(PR_SET_DUMPABLE)");
	receive(buf, sizeof(buf), &r);
	/* Enter the cgroup before any namespace: a new cgroup namespace is rooted
	 * at the cgroup the process is in when it is created. */
	enter_cgroups(&r);
	join(&r);
	unshare_new(&r);
	if (r.fork) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid > 0) {
			say("pid %d", pid);
			_exit(0);
		}
	} else {
		say("pid %d", getpid());
	}
	if (r.defer_cgroups)
		cgroups_after_fork(&r);
	if (r.exec)
		exec_plan();
}
