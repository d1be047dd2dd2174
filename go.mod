module github.com/lkc-containers/lkc

go 1.26.8

require (
	github.com/opencontainers/runtime-spec v1.2.1
	golang.org/x/sys v0.49.0
)

require (
	github.com/checkpoint-restore/go-criu/v8 v8.3.0
	github.com/cilium/ebpf v0.22.0
	github.com/containernetworking/cni v1.3.0
	github.com/seccomp/libseccomp-golang v0.11.1
	google.golang.org/grpc v1.82.1
	k8s.io/cri-api v0.37.2
)

require (
	github.com/aperturerobotics/protobuf-go-lite v0.14.0 // indirect
	golang.org/x/net v0.57.0 // indirect
	golang.org/x/text v0.40.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260526163538-3dc84a4a5aaa // indirect
	google.golang.org/protobuf v1.36.12-0.20260120151049-f2248ac996af // indirect
)
