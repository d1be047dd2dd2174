/*
 * plan.c: the last steps of starting a container's process (plan.h). The
 * order is initproc's: umask, rlimits, then the seccomp filter as late as
 * it can go -- right before execve with no_new_privs, else before the
 * credentials change, which may drop the CAP_SYS_ADMIN loading needs --
 * and the credentials. Rlimits come before the credentials, which may drop
 * the CAP_SYS_RESOURCE that raising a hard limit takes, and after
 * everything that maps memory or opens files. The scheduling policy and
 * I/O priority are set earlier, by lkc_plan_prepare (set_sched says why).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "errnos.h"
#include "plan.h"

#define MAX_RLIMITS 32

/* struct sched_attr (SCHED_ATTR_SIZE_VER1): its header, linux/sched/types.h,
 * also declares the struct sched_param that libc's sched.h declares. */
struct lkc_sched_attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

struct lkc_plan {
	char **argv, **envp;
	int argc, envc;
	const char *cwd;
	char *path; /* the resolved executable */
	unsigned int uid, gid, *groups;
	int ngroups;
	int umask; /* -1: inherited */
	int has_caps;
	unsigned long long caps[5]; /* bounding effective permitted inheritable ambient */
	int nnp;
	int preserve;
	int has_seccomp;
	unsigned int seccomp_flags;
	int notify_conn; /* -1: none */
	struct sock_fprog prog;
	struct {
		int type;
		unsigned long long soft, hard;
		const char *name;
	} rlimits[MAX_RLIMITS];
	int nrlimits;
	int has_sched;
	struct lkc_sched_attr sched;
	const char *sched_name; /* the policy, for messages */
	int has_ioprio;
	int ioprio;
	const char *ioprio_desc; /* class and level, for messages */
};

const char *lkc_errtext(int e)
{
	static char unknown[32];
	int n = sizeof(go_errno_text) / sizeof(go_errno_text[0]);

	if (e > 0 && e < n && go_errno_text[e] != NULL)
		return go_errno_text[e];
	snprintf(unknown, sizeof(unknown), "errno %d", e);
	return unknown;
}

/* fail fills err and returns -1. */
static int fail(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, LKC_ERRLEN, fmt, ap);
	va_end(ap);
	return -1;
}

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

static int parse_rlimit(struct lkc_plan *p, const char *v, char *err)
{
	int used = 0;

	if (p->nrlimits == MAX_RLIMITS)
		return fail(err, "exec plan: more than %d rlimits", MAX_RLIMITS);
	if (sscanf(v, "%d %llu %llu %n", &p->rlimits[p->nrlimits].type, &p->rlimits[p->nrlimits].soft,
		   &p->rlimits[p->nrlimits].hard, &used) != 3 || used == 0)
		return fail(err, "exec plan: bad rlimit %s", v);
	p->rlimits[p->nrlimits++].name = v + used;
	return 0;
}

static int parse_sched(struct lkc_plan *p, const char *v, char *err)
{
	unsigned long long flags, runtime, deadline, period;
	unsigned int policy, priority;
	int nice, used = 0;

	if (sscanf(v, "%u %llu %d %u %llu %llu %llu %n", &policy, &flags, &nice, &priority, &runtime, &deadline,
		   &period, &used) != 7 || used == 0)
		return fail(err, "exec plan: bad sched %s", v);
	p->sched = (struct lkc_sched_attr){
		.size = sizeof(p->sched),
		.policy = policy,
		.flags = flags,
		.nice = nice,
		.priority = priority,
		.runtime = runtime,
		.deadline = deadline,
		.period = period,
	};
	p->sched_name = v + used;
	p->has_sched = 1;
	return 0;
}

static int parse_ioprio(struct lkc_plan *p, const char *v, char *err)
{
	int used = 0;

	if (sscanf(v, "%d %n", &p->ioprio, &used) != 1 || used == 0)
		return fail(err, "exec plan: bad ioprio %s", v);
	p->ioprio_desc = v + used;
	p->has_ioprio = 1;
	return 0;
}

static int parse_record(struct lkc_plan *p, char *rec, char *err)
{
	const char *v;

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
		p->has_caps = sscanf(v, "%llx %llx %llx %llx %llx", &p->caps[0], &p->caps[1], &p->caps[2],
				     &p->caps[3], &p->caps[4]) == 5;
	else if (field(rec, "nnp"))
		p->nnp = 1;
	else if ((v = field(rec, "preserve")))
		p->preserve = atoi(v);
	else if ((v = field(rec, "seccomp"))) {
		p->has_seccomp = 1;
		p->seccomp_flags = strtoul(v, NULL, 10);
	} else if ((v = field(rec, "notify")))
		p->notify_conn = atoi(v);
	else if ((v = field(rec, "rlimit")))
		return parse_rlimit(p, v, err);
	else if ((v = field(rec, "sched")))
		return parse_sched(p, v, err);
	else if ((v = field(rec, "ioprio")))
		return parse_ioprio(p, v, err);
	else
		return fail(err, "exec plan: unknown record %s", rec);
	return 0;
}

struct lkc_plan *lkc_plan_parse(char *buf, size_t len, char *err)
{
	struct lkc_plan *p = calloc(1, sizeof(*p));
	size_t nrec = 0;

	for (size_t i = 0; i < len; i++)
		nrec += buf[i] == '\0';
	if (p == NULL)
		goto nomem;
	/* One slot more in envp for HOME, one for the terminating NULL. */
	p->argv = calloc(nrec + 1, sizeof(char *));
	p->envp = calloc(nrec + 2, sizeof(char *));
	p->groups = calloc(nrec + 1, sizeof(unsigned int));
	if (!p->argv || !p->envp || !p->groups)
		goto nomem;
	p->umask = -1;
	p->notify_conn = -1;
	for (char *rec = buf; rec < buf + len; rec += strlen(rec) + 1)
		if (parse_record(p, rec, err) < 0)
			return NULL;
	if (p->argc == 0 || p->cwd == NULL) {
		fail(err, "exec plan without args or cwd");
		return NULL;
	}
	return p;
nomem:
	fail(err, "parsing the exec plan: %s", lkc_errtext(ENOMEM));
	return NULL;
}

/* executable returns 0 for an executable file, else an error worded as
 * runc's: "stat <path>: ..." when stat fails, "<path>: permission denied"
 * when path is not executable. */
static int executable(const char *path, char *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fail(err, "stat %s: %s", path, lkc_errtext(errno));
	if (S_ISDIR(st.st_mode) || (st.st_mode & 0111) == 0)
		return fail(err, "%s: %s", path, lkc_errtext(EACCES));
	return 0;
}

/* find_exec resolves argv[0] in the container as a shell would, with the
 * PATH of the process's own environment: dir/name as written, "./name"
 * for an empty entry. */
static int find_exec(struct lkc_plan *p, char *err)
{
	const char *name = p->argv[0];
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char why[LKC_ERRLEN];

	if (strchr(name, '/') != NULL) {
		if (executable(name, why) < 0)
			return fail(err, "exec \"%s\": %s", name, why);
		p->path = (char *)name;
		return 0;
	}
	for (int i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "PATH=", 5) == 0)
			path = p->envp[i] + 5;
	p->path = malloc(strlen(path) + strlen(name) + 3);
	if (p->path == NULL)
		return fail(err, "looking up the executable: %s", lkc_errtext(ENOMEM));
	for (const char *dir = path;; dir++) {
		size_t n = strcspn(dir, ":");

		if (n == 0)
			sprintf(p->path, "./%s", name);
		else
			sprintf(p->path, "%.*s/%s", (int)n, dir, name);
		if (executable(p->path, why) == 0)
			return 0;
		dir += n;
		if (*dir == '\0')
			break;
	}
	return fail(err, "exec \"%s\": executable file not found in $PATH", name);
}

/* add_home sets HOME from the container's /etc/passwd (or "/") when the
 * environment lacks it, as runc does. */
static int add_home(struct lkc_plan *p, char *err)
{
	static char line[4096];
	const char *home = "/";
	char uid[16], *kv;
	FILE *f;

	for (int i = 0; i < p->envc; i++)
		if (strncmp(p->envp[i], "HOME=", 5) == 0)
			return 0;
	snprintf(uid, sizeof(uid), "%u", p->uid);
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
	kv = malloc(strlen(home) + 6);
	if (kv != NULL)
		sprintf(kv, "HOME=%s", home);
	if (f != NULL)
		fclose(f);
	if (kv == NULL)
		return fail(err, "setting HOME: %s", lkc_errtext(ENOMEM));
	p->envp[p->envc++] = kv;
	return 0;
}

int lkc_plan_has_seccomp(const struct lkc_plan *p)
{
	return p->has_seccomp;
}

/*
 * raise_hard_limits raises now each hard limit the process is to have above
 * its current one: that is the one step of setrlimit that can be refused
 * (it needs CAP_SYS_RESOURCE in the host's user namespace, and
 * RLIMIT_NOFILE stays within fs.nr_open), so the kernel answers before the
 * process is reported ready. Raising binds nothing; set_rlimits sets the
 * exact limits.
 */
static int raise_hard_limits(struct lkc_plan *p, char *err)
{
	for (int i = 0; i < p->nrlimits; i++) {
		struct rlimit cur, up;

		if (syscall(SYS_prlimit64, 0, p->rlimits[i].type, NULL, &cur) < 0)
			return fail(err, "getrlimit %s: %s", p->rlimits[i].name, lkc_errtext(errno));
		if (p->rlimits[i].hard <= cur.rlim_max)
			continue;
		up.rlim_cur = cur.rlim_cur;
		up.rlim_max = p->rlimits[i].hard;
		if (syscall(SYS_prlimit64, 0, p->rlimits[i].type, &up, NULL) < 0)
			return fail(err, "setrlimit %s hard %llu: %s (the host's hard limit is %llu)",
				    p->rlimits[i].name, p->rlimits[i].hard, lkc_errtext(errno),
				    (unsigned long long)cur.rlim_max);
	}
	return 0;
}

/* sched_hint says what usually stands behind a refused policy. */
static const char *sched_hint(const struct lkc_plan *p, int e)
{
	const char *name = p->sched_name;
	int deadline = strcmp(name, "SCHED_DEADLINE") == 0;

	if (e == EPERM && (strcmp(name, "SCHED_FIFO") == 0 || strcmp(name, "SCHED_RR") == 0))
		return " (no realtime runtime for the container's cgroup? v1: cpu.rt_runtime_us)";
	if (e == EPERM && deadline)
		return " (SCHED_DEADLINE needs a CPU affinity of every CPU: no linux.resources.cpu.cpus)";
	if (e == EBUSY && deadline)
		return " (the deadline bandwidth of these CPUs is taken)";
	return "";
}

/*
 * set_sched gives the calling thread, the one that execs, the process's
 * scheduling policy and I/O priority: before the credentials change, as a
 * realtime policy, a lower nice value and the realtime I/O class take
 * CAP_SYS_NICE, and before the process is reported ready, so that a policy
 * the kernel refuses fails create or exec, as in runc. Both are per thread
 * and inherited by execve.
 */
static int set_sched(struct lkc_plan *p, char *err)
{
	if (p->has_sched && syscall(SYS_sched_setattr, 0, &p->sched, 0) < 0) {
		int e = errno;

		return fail(err, "process.scheduler: sched_setattr %s: %s%s", p->sched_name, lkc_errtext(e),
			    sched_hint(p, e));
	}
	/* 1: IOPRIO_WHO_PROCESS; who 0: the calling thread. */
	if (p->has_ioprio && syscall(SYS_ioprio_set, 1, 0, p->ioprio) < 0)
		return fail(err, "process.ioPriority: ioprio_set %s: %s", p->ioprio_desc, lkc_errtext(errno));
	return 0;
}

int lkc_plan_prepare(struct lkc_plan *p, void *prog, size_t proglen, char *err)
{
	if (p->has_seccomp) {
		if (prog == NULL || proglen == 0 || proglen % sizeof(struct sock_filter) != 0)
			return fail(err, "loading the seccomp filter: a program of %zu bytes", proglen);
		p->prog.filter = prog;
		p->prog.len = proglen / sizeof(struct sock_filter);
	}
	if (chdir(p->cwd) < 0)
		return fail(err, "process.cwd %s: %s", p->cwd, lkc_errtext(errno));
	/* Nothing of lkc's may leak into the container (CVE-2024-21626). */
	if (syscall(SYS_close_range, 3 + p->preserve, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return fail(err, "close_range(%d, CLOEXEC): %s", 3 + p->preserve, lkc_errtext(errno));
	if (find_exec(p, err) < 0)
		return -1;
	if (raise_hard_limits(p, err) < 0)
		return -1;
	if (add_home(p, err) < 0)
		return -1;
	return set_sched(p, err);
}

/* group_list names the groups for an error: in full when short, else their
 * number and the first few, so that thousands stay one readable line. */
static void group_list(const struct lkc_plan *p, char *out, size_t size)
{
	const int shown = 8;
	size_t n = 0;

	if (p->ngroups > shown)
		n = snprintf(out, size, "(%d groups: [", p->ngroups);
	else
		n = snprintf(out, size, "[");
	for (int i = 0; i < p->ngroups && i < shown && n < size; i++)
		n += snprintf(out + n, size - n, i ? " %u" : "%u", p->groups[i]);
	if (n < size)
		snprintf(out + n, size - n, p->ngroups > shown ? "] ...)" : "]");
}

/*
 * default_signals leaves the process no signal ignored and none blocked
 * when it execs: execve keeps SIG_IGN and the mask, so a container started
 * under nohup (SIGHUP ignored) or by a caller that ignores SIGPIPE would
 * inherit them, and a shell cannot trap a signal ignored at its start
 * (POSIX). crun resets them the same way. Handlers are left alone: execve
 * resets them itself, and Go's stay until then for the failure path.
 * Signals libc reserves (EINVAL) are never ignored.
 */
static int default_signals(char *err)
{
	struct sigaction old, dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &old) < 0 || old.sa_handler != SIG_IGN)
			continue;
		if (sigaction(s, &dfl, NULL) < 0)
			return fail(err, "resetting signal %d: %s", s, lkc_errtext(errno));
	}
	sigemptyset(&none);
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, NSIG / 8) < 0)
		return fail(err, "unblocking signals: %s", lkc_errtext(errno));
	return 0;
}

static int set_rlimits(struct lkc_plan *p, char *err)
{
	for (int i = 0; i < p->nrlimits; i++) {
		struct rlimit rl = {.rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard};

		if (syscall(SYS_prlimit64, 0, p->rlimits[i].type, &rl, NULL) < 0)
			return fail(err, "setrlimit %s soft %llu hard %llu: %s", p->rlimits[i].name,
				    p->rlimits[i].soft, p->rlimits[i].hard, lkc_errtext(errno));
	}
	return 0;
}

/* send_notify hands the seccomp notify fd to the listener with the state. */
static int send_notify(int conn, int fd, const void *state, size_t statelen, char *err)
{
	char ctl[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)state, .iov_len = statelen};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int r;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	r = sendmsg(conn, &msg, MSG_NOSIGNAL);
	close(fd);
	close(conn);
	if (r < 0)
		return fail(err, "sending the seccomp notify fd to the listener: %s", lkc_errtext(errno));
	return 0;
}

static int load_seccomp(struct lkc_plan *p, const void *state, size_t statelen, char *err)
{
	long fd;

	if (!p->has_seccomp)
		return 0;
	fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp_flags, &p->prog);
	if (fd < 0)
		return fail(err, "loading the seccomp filter: %s", lkc_errtext(errno));
	if (!(p->seccomp_flags & SECCOMP_FILTER_FLAG_NEW_LISTENER))
		return 0;
	if (p->notify_conn < 0) {
		close(fd);
		return fail(err, "seccomp uses SCMP_ACT_NOTIFY but there is no connection to listenerPath");
	}
	return send_notify(p->notify_conn, fd, state, statelen, err);
}

static int drop_bounding(struct lkc_plan *p, char *err)
{
	for (int c = 0; c < 64; c++) {
		if (p->caps[0] & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno == EINVAL)
				return 0; /* past the kernel's last capability */
			return fail(err, "dropping capability %d from the bounding set: %s", c, lkc_errtext(errno));
		}
	}
	return 0;
}

static int set_ids(struct lkc_plan *p, char *err)
{
	char groups[LKC_ERRLEN / 2];

	if (syscall(SYS_setgroups, p->ngroups, p->groups) < 0 && (p->ngroups > 0 || errno != EPERM)) {
		int e = errno;

		group_list(p, groups, sizeof(groups));
		return fail(err, "setgroups %s: %s", groups, lkc_errtext(e));
	}
	if (syscall(SYS_setresgid, p->gid, p->gid, p->gid) < 0)
		return fail(err, "setting gid %u: %s", p->gid, lkc_errtext(errno));
	if (syscall(SYS_setresuid, p->uid, p->uid, p->uid) < 0)
		return fail(err, "setting uid %u: %s", p->uid, lkc_errtext(errno));
	return 0;
}

static int set_caps(struct lkc_plan *p, char *err)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = p->caps[1] >> (32 * i);
		data[i].permitted = p->caps[2] >> (32 * i);
		data[i].inheritable = p->caps[3] >> (32 * i);
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		return fail(err, "capset: %s", lkc_errtext(errno));
	for (int c = 0; c < 64; c++) {
		/* The kernel raises an ambient capability only if it is permitted
		 * and inheritable; like runc and crun, skip the others (`runc
		 * spec` lists ambient capabilities without inheritable ones). */
		if ((p->caps[4] & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0 &&
		    errno != EPERM)
			return fail(err, "raising ambient capability %d: %s", c, lkc_errtext(errno));
	}
	return 0;
}

/* set_user switches to the process's user and groups and leaves it exactly
 * the configured capabilities. */
static int set_user(struct lkc_plan *p, char *err)
{
	if (p->has_caps) {
		if (drop_bounding(p, err) < 0)
			return -1;
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			return fail(err, "prctl(PR_SET_KEEPCAPS): %s", lkc_errtext(errno));
	}
	if (set_ids(p, err) < 0)
		return -1;
	if (!p->has_caps)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return fail(err, "prctl(PR_SET_KEEPCAPS): %s", lkc_errtext(errno));
	return set_caps(p, err);
}

void lkc_plan_exec(struct lkc_plan *p, const void *state, size_t statelen, char *err)
{
	/* A session of its own, as runc gives every process: left in the
	 * caller's process group, the process would get the signals of the
	 * caller's terminal and its kill(0, sig) would reach host processes.
	 * A container's init and a process with a terminal lead one already. */
	if (getsid(0) != getpid() && setsid() < 0) {
		fail(err, "setsid: %s", lkc_errtext(errno));
		return;
	}
	if (p->umask >= 0)
		umask(p->umask);
	if (default_signals(err) < 0)
		return;
	if (set_rlimits(p, err) < 0)
		return;
	if (!p->nnp && load_seccomp(p, state, statelen, err) < 0)
		return;
	if (set_user(p, err) < 0)
		return;
	if (p->nnp) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
			fail(err, "prctl(PR_SET_NO_NEW_PRIVS): %s", lkc_errtext(errno));
			return;
		}
		if (load_seccomp(p, state, statelen, err) < 0)
			return;
	}
	syscall(SYS_execve, p->path, p->argv, p->envp);
	fail(err, "exec %s: %s", p->path, lkc_errtext(errno));
}
