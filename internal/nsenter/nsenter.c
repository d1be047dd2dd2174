/*
 * nsenter: the only C in lkc. It runs as an ELF constructor, before the Go
 * runtime starts threads, because setns(2) into a mount or user namespace
 * and unshare(CLONE_NEWUSER) are refused to a multi-threaded process.
 *
 * Without _LKC_INIT_SYNC it only does a plain `lkc start` (start.c) if the
 * command line is one, and otherwise nothing. When _LKC_INIT_SYNC names a
 * SOCK_SEQPACKET fd, it reads one request from the parent (lkc create/exec),
 * one instruction a line:
 *   cgroup <file>        write "0" to this v1 tasks file: the process moves
 *                        itself, which skips the global lock (and the RCU
 *                        grace period, ~10 ms) a move by pid would take
 *   affinity <cpus>      once in the cgroups, run on these CPUs (a list,
 *                        "0-3,7", or "all": every CPU the cgroup allows):
 *                        an exec's execCPUAffinity.final
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
 *   error <text>         what failed; the process then exits (after an
 *                        exec's "ready" too: its failing execve, which
 *                        the parent waits for until the socket, close-on-
 *                        exec, closes)
 *
 * Why `exec` is done in C: a process joining a running container needs
 * nothing of Go's once it is in the namespaces, and starting the Go runtime
 * (threads, CPUID traps on this kind of VM, page faults) was the largest
 * part of `lkc exec`'s latency (docs/exec.md: 1.4 times the wall time
 * without it). So when the process is plain -- no terminal, no seccomp
 * notify listener, no oom score to set -- the parent sends,
 * after "pid", a plan: NUL-terminated records, one per field,
 *   arg <s>  env <s>     argv and envp, in order
 *   cwd <dir>            working directory
 *   uid <n>  gid <n>  group <n>   credentials; group repeats
 *   umask <octal>        only when set
 *   rlimit <type> <soft> <hard> <name>   repeats
 *   caps <bnd> <eff> <perm> <inh> <amb>   capability sets, hex masks
 *   nnp                  no_new_privs
 *   sched <policy> <flags> <nice> <prio> <runtime> <deadline> <period> <name>
 *                        sched_setattr(2) of the thread that execs
 *   ioprio <value> <desc>  ioprio_set(2) of it
 *   preserve <n>         fds 3..3+n-1 stay open
 *   seccomp <flags>      a BPF program follows, in a message of its own
 * and this process carries it out with plan.c, the one implementation of
 * a process's last steps: Go's init runs the same code through cgo for
 * every other process (with one more record, "notify <fd>", the seccomp
 * listener's connection).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#include "plan.h"
#include "start.h"

#define MAX_JOINS 16
#define REQ_MAX 8192

static int sync_fd = -1;

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
	say("error %s: %s", what, lkc_errtext(errno));
	_exit(1);
}

static void await_ok(void)
{
	char buf[8];
	ssize_t n = recv(sync_fd, buf, sizeof(buf), 0);

	if (n != 2 || memcmp(buf, "ok", 2) != 0)
		_exit(1); /* the parent went away or refused: nothing to report to */
}

/* write_fd writes data, all of it, to fd (named what in an error) and
 * closes fd. */
static void write_fd(int fd, const char *what, const char *data)
{
	if (write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		die(what);
	close(fd);
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		die(path);
	write_fd(fd, path, data);
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
	char *affinity;
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
		} else if (strncmp(line, "affinity ", 9) == 0) {
			r->affinity = line + 9;
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
 * puts the time namespace first (while the process has the host's
 * capabilities), then the user namespace, the mount namespace last.
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
	int offsets = -1;

	/* With a new user namespace the time namespace is made inside it,
	 * so that the container's user namespace owns it: CRIU dumps only
	 * namespaces the container's user namespace owns. Its offsets are
	 * written to the process's own /proc file, which a non-dumpable
	 * process in a new user namespace may not open for writing: it is
	 * opened first, by the caller's root, whose capability over the new
	 * namespace the kernel checks at the write. */
	if ((flags & CLONE_NEWTIME) && r->offsets[0] &&
	    (offsets = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC)) < 0)
		die("/proc/self/timens_offsets");
	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			die("unshare(CLONE_NEWUSER)");
		say("maps");
		await_ok();
		become_root();
		flags &= ~CLONE_NEWUSER;
	}
	if (flags & CLONE_NEWTIME) {
		if (unshare(CLONE_NEWTIME) < 0)
			die("unshare(CLONE_NEWTIME)");
		if (offsets >= 0)
			write_fd(offsets, "/proc/self/timens_offsets", r->offsets);
		flags &= ~CLONE_NEWTIME;
	}
	/* A new cgroup namespace is rooted at the cgroup the process is in:
	 * with deferred cgroups it is made once the process is in them. */
	if (r->defer_cgroups)
		flags &= ~CLONE_NEWCGROUP;
	if (flags && unshare(flags) < 0)
		die("unshare");
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

/* next_range reads the next "a" or "a-b" of a CPU list at *s: 1 with the
 * range, 0 at the end, -1 for a malformed list. */
static int next_range(const char **s, unsigned long *from, unsigned long *to)
{
	char *end;

	if (**s == '\0')
		return 0;
	*from = *to = strtoul(*s, &end, 10);
	if (end == *s)
		return -1;
	if (*end == '-')
		*to = strtoul(end + 1, &end, 10);
	if (*end == ',')
		end++;
	else if (*end != '\0')
		return -1;
	*s = end;
	return *to >= *from ? 1 : -1;
}

/*
 * set_affinity puts the process on the CPUs of a list the parent wrote
 * ("0-3,7"), or on every CPU for "all": the kernel narrows a mask to the
 * CPUs of the process's cpuset, so a mask of all bits is the cgroup's set.
 */
static void set_affinity(const char *list)
{
	unsigned long from, to, max = 0;
	const char *s = list;
	int all = strcmp(list, "all") == 0, more = 0;
	cpu_set_t *set;
	size_t size;

	while (!all && (more = next_range(&s, &from, &to)) > 0)
		max = to > max ? to : max;
	if (all)
		max = 65535; /* more CPUs than Linux has */
	else if (more < 0) {
		errno = EINVAL;
		die(list);
	}
	set = CPU_ALLOC(max + 1);
	if (set == NULL)
		die("execCPUAffinity");
	size = CPU_ALLOC_SIZE(max + 1);
	memset(set, all ? 0xff : 0, size);
	for (s = list; !all && next_range(&s, &from, &to) > 0;)
		for (; from <= to; from++)
			CPU_SET_S(from, size, set);
	if (sched_setaffinity(0, size, set) < 0)
		die("sched_setaffinity (execCPUAffinity)");
	CPU_FREE(set);
}

/* enter_cgroups moves the process into its cgroups, then onto the CPUs
 * the request names for it there. */
static void enter_cgroups(struct request *r, const char *affinity)
{
	for (int i = 0; i < r->ncgroups; i++)
		write_file(r->cgroups[i], "0");
	if (affinity != NULL)
		set_affinity(affinity);
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
	enter_cgroups(&late, r->affinity);
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

/*
 * exec_plan finishes an `lkc exec` without Go: it receives the plan and the
 * seccomp program, prepares (plan.c), reports ready and execs.
 */
static void exec_plan(void)
{
	static char err[LKC_ERRLEN];
	size_t len, proglen = 0;
	char *buf = recv_whole(&len);
	struct lkc_plan *p = lkc_plan_parse(buf, len, err);
	void *prog = NULL;

	if (p != NULL && lkc_plan_has_seccomp(p))
		prog = recv_whole(&proglen);
	if (p == NULL || lkc_plan_prepare(p, prog, proglen, err) < 0) {
		say("error %s", err);
		_exit(1);
	}
	say("ready");
	lkc_plan_exec(p, NULL, 0, err);
	say("error %s", err);
	_exit(127);
}

__attribute__((constructor)) static void nsenter(void)
{
	static char buf[REQ_MAX];
	struct request r = {0};
	const char *env = getenv("_LKC_INIT_SYNC");

	if (env == NULL) {
		lkc_fast_start();
		return;
	}
	sync_fd = atoi(env);
	/* Nothing of the host may be read through /proc/<pid> of this process. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("prctl(PR_SET_DUMPABLE)");
	receive(buf, sizeof(buf), &r);
	/* Enter the cgroup before any namespace: a new cgroup namespace is rooted
	 * at the cgroup the process is in when it is created. */
	enter_cgroups(&r, r.defer_cgroups ? NULL : r.affinity);
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
