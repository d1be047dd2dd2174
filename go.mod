module github.com/lkc-containers/lkc

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.2.1
	golang.org/x/sys v0.49.0
)
