GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# BIN is where `make lkc` puts the binary (the integration tests build their
# own through this rule: make BIN=/tmp/x/lkc lkc).
BIN ?= bin/lkc

# lkc is linked statically against musl, not glibc: glibc's start-up probes
# the CPU with CPUID, which traps to the hypervisor on a VM (~0.9 ms of CPU
# per exec here), and every container start execs lkc twice (docs/kernel.md).
# Debian ships libseccomp.a only built against glibc, so
# scripts/install-libseccomp-musl.sh (run by scripts/deps.sh) builds Debian's
# libseccomp source with musl into MUSL_PREFIX, beside the kernel's uapi
# headers (musl-gcc only searches musl's own). pkg-config looks only there:
# nothing of glibc can slip in.
MUSL_CC ?= musl-gcc
MUSL_PREFIX ?= /opt/lkc/libseccomp-musl
MUSL_ENV = PKG_CONFIG_LIBDIR=$(MUSL_PREFIX)/lib/pkgconfig PKG_CONFIG_PATH= \
	CGO_CFLAGS="-O2 -isystem $(MUSL_PREFIX)/include"
MUSL_BUILD = $(GO) build -trimpath -tags osusergo,netgo
GO_LDFLAGS = -s -w -X github.com/lkc-containers/lkc/internal/cli.Version=$(VERSION)

# The default build is not a static PIE: relocating itself at every start
# costs 1-3 ms of CPU per container start and per exec here (docs/kernel.md).
# lkc-pie is that variant, for hosts that require every binary to be
# position-independent, mapped at a random address.
# Debian's musl-gcc specs cannot link -static-pie (they start every program
# from Scrt1.o and give it ld-musl as interpreter), so PIE_CC adds
# scripts/musl-static-pie.specs, which starts it from musl's self-relocating
# rcrt1.o with no interpreter.
PIE_BIN ?= bin/lkc-pie
PIE_CC ?= gcc -specs=$(CURDIR)/scripts/musl-static-pie.specs

.PHONY: all lkc lkc-pie lkc-glibc musl-prefix test unit integration vet clean

all: lkc

lkc: musl-prefix
	CC=$(MUSL_CC) $(MUSL_ENV) $(MUSL_BUILD) \
		-ldflags "$(GO_LDFLAGS) -extldflags -static" -o $(BIN) ./cmd/lkc

lkc-pie: musl-prefix
	CC="$(PIE_CC)" $(MUSL_ENV) $(MUSL_BUILD) -buildmode=pie \
		-ldflags "$(GO_LDFLAGS) -linkmode=external -extldflags -static-pie" \
		-o $(PIE_BIN) ./cmd/lkc

# lkc-glibc is the plain build (cgo against Debian's libseccomp-dev, glibc,
# dynamically linked) that scripts/test.sh keeps green beside the musl one.
lkc-glibc:
	$(GO) build -o $(BIN) ./cmd/lkc

musl-prefix:
	@command -v $(MUSL_CC) >/dev/null || \
		{ echo "make: $(MUSL_CC) not found: apt-get install musl-tools (scripts/deps.sh)" >&2; exit 1; }
	@test -f $(MUSL_PREFIX)/lib/libseccomp.a || \
		{ echo "make: no musl libseccomp in $(MUSL_PREFIX): run scripts/install-libseccomp-musl.sh as root (scripts/deps.sh runs it)" >&2; exit 1; }

test:
	./scripts/test.sh

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"

clean:
	rm -rf bin
