/*
 * plan.h: the last steps of starting a container's process, in C only. The
 * nsenter constructor runs them for a plain `lkc exec` (no Go runtime at
 * all); Go's init calls them through cgo for every other process, the
 * container's own included, so each step exists once. plan.go says what a
 * plan holds.
 */
#ifndef LKC_PLAN_H
#define LKC_PLAN_H

#include <stddef.h>

#define LKC_ERRLEN 512

struct lkc_plan;

/*
 * lkc_plan_parse reads the records of a plan (NUL-terminated "key value",
 * plan.go), keeping buf. On failure it returns NULL with err filled.
 */
struct lkc_plan *lkc_plan_parse(char *buf, size_t len, char *err);

/* lkc_plan_has_seccomp says whether the plan loads a seccomp filter: its
 * program then comes to lkc_plan_prepare. */
int lkc_plan_has_seccomp(const struct lkc_plan *p);

/*
 * lkc_plan_prepare does the steps that can fail before the process is
 * reported ready: the working directory, closing every fd but the
 * preserved ones, the PATH lookup, HOME, and the scheduling policy and I/O
 * priority, which it sets on the calling thread: the thread that execs
 * must be the one that prepared. prog (kept) is the seccomp program,
 * proglen its size in bytes. It returns -1 with err filled on failure.
 */
int lkc_plan_prepare(struct lkc_plan *p, void *prog, size_t proglen, char *err);

/*
 * lkc_plan_exec sets umask, default signal dispositions and an empty
 * signal mask, rlimits, the seccomp filter (handing a notify
 * fd to the listener), user, groups, capabilities and no_new_privs, and
 * execs. It returns only on failure, with err filled. The calling thread
 * must be the one that execs: every step but umask and rlimits is per
 * thread, and they are made with raw system calls (musl's wrappers would
 * apply them to every thread of a Go process).
 */
void lkc_plan_exec(struct lkc_plan *p, const void *state, size_t statelen, char *err);

/* lkc_errtext words errno e as Go does (errnos.h). */
const char *lkc_errtext(int e);

#endif
