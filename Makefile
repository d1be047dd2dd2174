GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# BIN is where `make lkc` puts the binary (the integration tests build their
# own through this rule: make BIN=/tmp/x/lkc lkc).
BIN ?= bin/lkc

# lkc is linked statically against musl, not glibc: glibc's start-up probes
# the CPU with CPUID, which traps to the hypervisor on a VM (~0.9 ms of CPU
# per exec here), and every container start execs lkc twice (docs/kernel.md).
# musl-gcc only sees musl's headers, so MUSL_SYSROOT gives it the two things
# it needs from Debian's: libseccomp (headers and the static library, which
# internal/seccomp/fortify.go makes link against musl) and the kernel's
# uapi headers that seccomp.h includes. Nothing else of glibc can slip in.
MUSL_CC ?= musl-gcc
MUSL_SYSROOT := $(CURDIR)/bin/.musl
DEB_INCLUDE := /usr/include
DEB_LIB := /usr/lib/x86_64-linux-gnu

.PHONY: all lkc musl-sysroot test unit integration vet clean

all: lkc

lkc: musl-sysroot
	CC=$(MUSL_CC) CGO_CFLAGS="-O2 -isystem $(MUSL_SYSROOT)/include" CGO_LDFLAGS="-L$(MUSL_SYSROOT)/lib" \
	$(GO) build -trimpath -tags osusergo,netgo -ldflags "-s -w -X github.com/lkc-containers/lkc/internal/cli.Version=$(VERSION) -extldflags -static" -o $(BIN) ./cmd/lkc

musl-sysroot:
	@command -v $(MUSL_CC) >/dev/null || { echo "make: $(MUSL_CC) not found: apt-get install musl-tools (scripts/deps.sh)" >&2; exit 1; }
	@test -f $(DEB_LIB)/libseccomp.a || { echo "make: $(DEB_LIB)/libseccomp.a not found: apt-get install libseccomp-dev (scripts/deps.sh)" >&2; exit 1; }
	@mkdir -p $(MUSL_SYSROOT)/include $(MUSL_SYSROOT)/lib
	@for h in seccomp.h seccomp-syscalls.h linux asm-generic; do ln -sfn $(DEB_INCLUDE)/$$h $(MUSL_SYSROOT)/include/$$h; done
	@ln -sfn $(DEB_INCLUDE)/x86_64-linux-gnu/asm $(MUSL_SYSROOT)/include/asm
	@ln -sfn $(DEB_LIB)/libseccomp.a $(MUSL_SYSROOT)/lib/libseccomp.a

test:
	./scripts/test.sh

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"

clean:
	rm -rf bin
