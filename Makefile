GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all lkc test unit integration vet clean

all: lkc

lkc:
	$(GO) build -trimpath -tags osusergo,netgo -ldflags "-s -w -X github.com/lkc-containers/lkc/internal/cli.Version=$(VERSION) -extldflags -static" -o bin/lkc ./cmd/lkc

test:
	./scripts/test.sh

vet:
	$(GO) vet ./...
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"

clean:
	rm -rf bin
