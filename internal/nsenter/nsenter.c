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
 *                        or cgroup namespace, see cgroups_after_fork)
 *   join <path>          setns into the namespace file at <path>, in order
 *   unshare <flags>      unshare these CLONE_NEW* flags (decimal)
 *   timeoffset <clock> <secs> <nanos>   offsets for a new time namespace
 *   fork                 fork once more, so new pid/time namespaces apply
 * and answers with messages of its own:
 *   maps                 a new user namespace waits for its id maps; the
 *                        parent writes them and answers "ok"
 *   pid <n>              the pid (in the parent's pid namespace) of the
 *                        process that goes on into the Go runtime
 *   error <text>         what failed; the process then exits
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
	say("error %s: %s", what, strerror(errno));
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
	int njoins;
	int unshare_flags;
	char offsets[512];
	int fork;
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
			r->joins[r->njoins++] = line + 5;
		} else if (strncmp(line, "unshare ", 8) == 0) {
			r->unshare_flags = atoi(line + 8);
		} else if (strncmp(line, "timeoffset ", 11) == 0) {
			strncat(r->offsets, line + 11, sizeof(r->offsets) - strlen(r->offsets) - 2);
			strcat(r->offsets, "\n");
		} else if (strcmp(line, "fork") == 0) {
			r->fork = 1;
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

	for (int i = 0; i < r->njoins; i++) {
		fds[i] = open(r->joins[i], O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die(r->joins[i]);
	}
	for (int i = 0; i < r->njoins; i++) {
		if (setns(fds[i], 0) < 0)
			die(r->joins[i]);
		close(fds[i]);
		if (strstr(r->joins[i], "/user") != NULL)
			become_root();
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
 * "tasks" moves one thread). Entering after the namespaces changes nothing
 * for the process: no new cgroup namespace is made (it would be rooted at
 * the cgroup the process was in) and no user namespace is in the way of the
 * host's cgroup files; the parent defers only then.
 */
static void cgroups_after_fork(void)
{
	static char buf[REQ_MAX];
	struct request late = {0};

	receive(buf, sizeof(buf), &late);
	if (late.njoins || late.unshare_flags || late.fork || late.defer_cgroups) {
		errno = EINVAL;
		die("deferred cgroup message");
	}
	enter_cgroups(&late);
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
		cgroups_after_fork();
}
