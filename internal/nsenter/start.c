/*
 * start.c: `lkc start` without the Go runtime, for the common case.
 *
 * A start only releases a created container's init through its exec fifo
 * and waits for init's execve; starting the Go runtime (about 1.5 ms of CPU
 * here, containerd's shim calls start once per container) was most of it.
 * So the nsenter constructor first looks at the command line: a plain
 * `lkc [--root R] [--log L] [--log-format F] start ID` of a container that
 * `lkc create` recorded the start facts of (the file "start", below) is
 * done here, the way container.Start does it, and the process exits.
 * Anything else returns before any effect, with every fd closed, and the Go
 * CLI does the whole command as ever: another command or flag, a bad id,
 * no facts (a container created by `run`, restored, or with poststart
 * hooks, which Go runs), a container still being created, init gone, the
 * cgroup frozen, nobody on the fifo.
 *
 * The facts file holds one line, "<init pid> <init start time> <file>\n",
 * where <file> says whether the cgroup is frozen ("FROZEN", "FREEZING" or
 * "1") or is empty when there is no freezer: container.writeStartFacts.
 *
 * Once init is released there is no going back to Go: a failure after it
 * (init died, its exec failed) re-executes the binary with the message in
 * _LKC_START_FAILED, and the Go CLI reports it as it reports any error
 * (stderr, --log in its format, the exit code).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plan.h"
#include "start.h"

#define CMDLINE_MAX 8192
#define MAX_ARGS 16
#define MSG_MAX 4200

extern char **environ;

struct start_args {
	const char *root;
	const char *id;
};

/* read_small reads a file of at most size-1 bytes into buf, NUL-terminated;
 * -1 when it cannot or the file is larger. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf + total, size - 1 - total)) > 0)
		total += n;
	close(fd);
	if (n < 0 || (size_t)total == size - 1)
		return -1;
	buf[total] = 0;
	return total;
}

/* global_flag says whether arg is one of the global flags the fast path
 * takes, each with a value (-x v, --x v, -x=v, --x=v), and points value at
 * it (NULL: the value is the next argument). */
static int global_flag(const char *arg, const char **name, const char **value)
{
	static const char *const names[] = {"root", "log", "log-format"};

	if (arg[0] != '-')
		return 0;
	arg += arg[1] == '-' ? 2 : 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t l = strlen(names[i]);

		if (strncmp(arg, names[i], l) != 0)
			continue;
		if (arg[l] == 0) {
			*name = names[i];
			*value = NULL;
			return 1;
		}
		if (arg[l] == '=') {
			*name = names[i];
			*value = arg + l + 1;
			return 1;
		}
	}
	return 0;
}

/* valid_id is state.CheckID. */
static int valid_id(const char *id)
{
	if (*id == 0 || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return 0;
	for (const char *c = id; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("_+-.", *c))
			return 0;
	return 1;
}

/* parse_args takes argv of a plain start, or returns 0. */
static int parse_args(char **argv, int argc, struct start_args *a)
{
	int i = 1;

	a->root = "/run/lkc";
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *name, *value;

		if (!global_flag(argv[i], &name, &value))
			return 0;
		if (value == NULL) {
			if (++i == argc)
				return 0;
			value = argv[i];
		}
		if (strcmp(name, "root") == 0)
			a->root = value;
		else if (strcmp(name, "log-format") == 0 && strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
			return 0;
	}
	/* A relative root is Go's to make absolute, as the messages show it. */
	if (argc - i != 2 || strcmp(argv[i], "start") != 0 || a->root[0] != '/')
		return 0;
	a->id = argv[i + 1];
	/* An id that looks like a flag is the start command's flag to refuse. */
	return a->id[0] != '-' && valid_id(a->id);
}

/* init_waits says whether pid runs, started at start, and is not a zombie
 * (state.Alive). */
static int init_waits(long pid, unsigned long long start)
{
	char path[64], stat[1024], *p;
	unsigned long long got;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (pid <= 0 || read_small(AT_FDCWD, path, stat, sizeof(stat)) < 0)
		return 0;
	p = strrchr(stat, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	/* p + 2 is field 3, the state; the start time is field 22. */
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return 0;
		p++;
	}
	if (sscanf(p, "%llu", &got) != 1)
		return 0;
	return got == start;
}

/* frozen says whether the freezer file says frozen; -1 if unreadable. */
static int frozen(const char *file)
{
	char v[64];
	ssize_t n;

	if (*file == 0)
		return 0;
	n = read_small(AT_FDCWD, file, v, sizeof(v));
	if (n < 0)
		return -1;
	while (n > 0 && v[n - 1] == '\n')
		v[--n] = 0;
	return strcmp(v, "FROZEN") == 0 || strcmp(v, "FREEZING") == 0 || strcmp(v, "1") == 0;
}

/* created checks, under the lock on dir, what container.start's status
 * check does: complete, init alive, not frozen. */
static int created(int dir)
{
	char facts[4096], *file, *end;
	long pid;
	unsigned long long start;
	ssize_t n;
	struct stat st;

	if (fstat(dir, &st) < 0 || st.st_nlink == 0)
		return 0; /* removed by a delete we waited for */
	if (faccessat(dir, "creating", F_OK, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
		return 0;
	n = read_small(dir, LKC_START_FACTS, facts, sizeof(facts));
	if (n < 2 || facts[n - 1] != '\n')
		return 0;
	facts[n - 1] = 0;
	pid = strtol(facts, &end, 10);
	if (*end != ' ')
		return 0;
	start = strtoull(end + 1, &file, 10);
	if (*file != ' ')
		return 0;
	file++;
	return init_waits(pid, start) && frozen(file) == 0;
}

/* release writes the byte that lets init go on, as container.release does;
 * it returns the fifo's write end, or -1 with nothing written. */
static int release(int dir)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	int fd = openat(dir, "exec.fifo", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	/* A reader gone since the open would raise SIGPIPE. */
	sigaction(SIGPIPE, &ign, &old);
	n = write(fd, "", 1);
	sigaction(SIGPIPE, &old, NULL);
	if (n != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* wait_exec is container.waitExec: it waits until init closed the fifo
 * (its execve, close-on-exec, or its death) and fills msg with why it
 * failed, if it did. */
static int wait_exec(int dir, int w, const char *id, const char *fifo, char *msg, size_t size)
{
	struct pollfd p = {.fd = w};
	char buf[4096];
	ssize_t n;
	int r;

	while (poll(&p, 1, -1) < 0) {
		if (errno != EINTR) {
			snprintf(msg, size, "container %s: waiting for init to exec: %s", id, lkc_errtext(errno));
			return -1;
		}
	}
	r = openat(dir, "exec.fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (r < 0) {
		snprintf(msg, size, "open %s: %s", fifo, lkc_errtext(errno));
		return -1;
	}
	n = read(r, buf, sizeof(buf) - 1);
	close(r);
	if (n <= 0)
		return 0;
	if (buf[0] == 0) {
		snprintf(msg, size, "container %s: init exited before it was started", id);
		return -1;
	}
	buf[n] = 0;
	snprintf(msg, size, "container %s: starting: %s", id, buf);
	return -1;
}

/* report hands msg to the Go CLI, which reports it as any error. */
static void report(char **argv, const char *msg)
{
	static char var[sizeof(LKC_START_FAILED) + MSG_MAX];
	size_t n = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(char *));
	if (env != NULL) {
		snprintf(var, sizeof(var), LKC_START_FAILED "=%s", msg);
		memcpy(env, environ, n * sizeof(char *));
		env[n] = var;
		execve("/proc/self/exe", argv, env);
	}
	dprintf(2, "lkc: %s\n", msg);
	_exit(1);
}

/* finish releases init and waits for its exec with the lock on dir held;
 * it does not return. */
static void finish(int dir, int w, char **argv, const struct start_args *a)
{
	char fifo[4096], msg[MSG_MAX];
	int failed;

	snprintf(fifo, sizeof(fifo), "%s/%s/exec.fifo", a->root, a->id);
	failed = wait_exec(dir, w, a->id, fifo, msg, sizeof(msg));
	close(w);
	if (unlinkat(dir, "exec.fifo", 0) < 0 && !failed) {
		snprintf(msg, sizeof(msg), "remove %s: %s", fifo, lkc_errtext(errno));
		failed = 1;
	}
	if (failed)
		report(argv, msg);
	_exit(0);
}

void lkc_fast_start(void)
{
	static char cmdline[CMDLINE_MAX];
	char *argv[MAX_ARGS + 1];
	struct start_args a;
	char path[4096];
	ssize_t n;
	int argc = 0, dir, w;

	if (getenv(LKC_START_FAILED) != NULL)
		return;
	n = read_small(AT_FDCWD, "/proc/self/cmdline", cmdline, sizeof(cmdline));
	if (n <= 0 || cmdline[n - 1] != 0)
		return;
	for (char *p = cmdline; p < cmdline + n; p += strlen(p) + 1) {
		if (argc == MAX_ARGS)
			return;
		argv[argc++] = p;
	}
	argv[argc] = NULL;
	if (!parse_args(argv, argc, &a))
		return;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", a.root, a.id) >= sizeof(path))
		return;
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return;
	while (flock(dir, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(dir);
			return;
		}
	}
	if (!created(dir) || (w = release(dir)) < 0) {
		close(dir); /* the lock goes with it, for Go's command */
		return;
	}
	finish(dir, w, argv, &a);
}
