module github.com/lkc-containers/lkc

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.2.1
	golang.org/x/sys v0.49.0
)

require (
	github.com/checkpoint-restore/go-criu/v8 v8.3.0
	github.com/containernetworking/cni v1.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
)

require (
	github.com/aperturerobotics/protobuf-go-lite v0.14.0 // indirect
	github.com/cilium/ebpf v0.22.0 // indirect
)
