module github.com/lkc-containers/lkc

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.2.1
	golang.org/x/sys v0.49.0
)

require (
	github.com/checkpoint-restore/go-criu/v7 v7.2.0
	github.com/seccomp/libseccomp-golang v0.11.1
	google.golang.org/protobuf v1.34.2
)
