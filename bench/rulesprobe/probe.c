/*
 * probe: the program the rules scenario of bench/ execs 1,000 times a
 * second (docs/bench.md, "Rules"). It forks one child at once, before any
 * rules engine can move it (the race cgrulesengd loses); 500 ms (the
 * parent) and 600 ms (the child) later each reads its own
 * /proc/self/cgroup once and reports on fd 3 whether every hierarchy
 * named shows the target path:
 *   kind 1: the parent is in the group 500 ms after its start,
 *   kind 2: the parent is not,
 *   kind 3: the child is in the group 600 ms after its start,
 *   kind 4: the child is not;
 * each with the time of the look (CLOCK_MONOTONIC ns), a child's with its
 * parent's pid instead, so that a child left behind by a parent that was
 * placed (an escapee of the race) tells apart from one whose parent the
 * engine had not reached yet.
 * Usage: probe TARGET N (N: how many lines of /proc/self/cgroup must name
 * TARGET). Static and libc-light, so that an exec costs little; it does
 * not poll, so the latency is taken from the kernel's cgroup_attach_task
 * trace events instead, at no cost to the machine.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct record {
	int32_t kind;
	int32_t pid;
	int64_t t;
};

static int64_t now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* in_group counts the lines "ID:CONTROLLERS:PATH" whose PATH is target. */
static int in_group(const char *target, size_t tlen, int want)
{
	char buf[4096];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	int count = 0;
	for (char *line = buf; *line;) {
		char *end = strchr(line, '\n');
		if (!end)
			end = line + strlen(line);
		char *c1 = memchr(line, ':', end - line);
		char *c2 = c1 ? memchr(c1 + 1, ':', end - c1 - 1) : NULL;
		if (c2 && (size_t)(end - c2 - 1) == tlen && memcmp(c2 + 1, target, tlen) == 0)
			count++;
		line = *end ? end + 1 : end;
	}
	return count >= want;
}

static void report(int32_t kind, int64_t t)
{
	struct record r = { kind, getpid(), t };
	write(3, &r, sizeof(r));
}

static void nap(long ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	const char *target = argv[1];
	size_t tlen = strlen(target);
	int want = atoi(argv[2]);
	pid_t child = fork();
	if (child == 0) {
		/* 100 ms after its parent's look: a parent placed by then had
		 * its child swept at once, so a child still out is the race's. */
		nap(600000000);
		report(in_group(target, tlen, want) ? 3 : 4, getppid());
		_exit(0);
	}
	nap(500000000);
	report(in_group(target, tlen, want) ? 1 : 2, now());
	if (child > 0)
		waitpid(child, NULL, 0);
	return 0;
}
