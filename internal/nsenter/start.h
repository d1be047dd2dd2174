/*
 * start.h: `lkc start` done by the constructor (start.c). The names are
 * shared with the Go side: nsenter.StartFacts and nsenter.StartFailedEnv
 * are these.
 */
#ifndef LKC_START_H
#define LKC_START_H

/* The file in a container's state directory with the facts a fast start
 * checks, written by `lkc create`. */
#define LKC_START_FACTS "start"

/* The variable a fast start that failed after releasing init re-executes
 * the CLI with, the error as its value. */
#define LKC_START_FAILED "_LKC_START_FAILED"

/* lkc_fast_start does a plain `lkc start` and exits, or returns having
 * done nothing. */
void lkc_fast_start(void);

#endif
