package seccomp

// lkc is linked statically against musl rather than glibc (see the Makefile
// and docs/kernel.md: glibc's start-up costs ~0.9 ms of CPU per exec on this
// VM, and lkc starts twice per container). Debian's libseccomp.a was built
// against glibc with _FORTIFY_SOURCE, so it calls glibc's checked
// __fprintf_chk, the one libc symbol it needs that musl lacks. This defines
// it as plain vfprintf when the libc is not glibc; the check it skips (a %n
// in a writable format string) concerns only libseccomp's own debug output
// formats, which are constants. Under glibc the real one is used.

/*
#include <stdarg.h>
#include <stdio.h>

#ifndef __GLIBC__
int __fprintf_chk(FILE *stream, int flag, const char *format, ...)
{
	va_list ap;
	int n;

	(void)flag;
	va_start(ap, format);
	n = vfprintf(stream, format, ap);
	va_end(ap);
	return n;
}
#endif
*/
import "C"
