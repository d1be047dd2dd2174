package main

import (
	"context"
	"fmt"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/lkc-containers/lkc/internal/testutil/cri"
)

// grpcPods drives pods as the kubelet does: CRI calls over gRPC on
// containerd's socket, one connection kept for the lab's life, no process
// started per call.
type grpcPods struct{ l *criLab }

// dialCRI opens the lab's CRI connection (lazily: the first call connects).
func (l *criLab) dialCRI() error {
	conn, err := grpc.NewClient("unix://"+l.daemon.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI client for %s: %w", l.daemon.Addr, err)
	}
	l.grpcConn, l.runtime = conn, runtimeapi.NewRuntimeServiceClient(conn)
	return nil
}

func (g grpcPods) start(ctx context.Context, rt, name string, p *criPod) error {
	podCfg, ctrCfg := g.l.podConfig(name), g.l.containerConfig()
	run, err := g.l.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: rt})
	if err != nil {
		return fmt.Errorf("RunPodSandbox %s: %w", name, err)
	}
	p.id = run.PodSandboxId
	g.l.pods = append(g.l.pods, p.id)
	created, err := g.l.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.id, Config: ctrCfg, SandboxConfig: podCfg})
	if err != nil {
		return fmt.Errorf("CreateContainer in pod %s: %w", p.id, err)
	}
	p.ctr = created.ContainerId
	if _, err := g.l.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.ctr}); err != nil {
		return fmt.Errorf("StartContainer %s: %w", p.ctr, err)
	}
	return nil
}

func (g grpcPods) running(ctx context.Context, p *criPod) error {
	st, err := g.l.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: p.ctr})
	if err != nil {
		return fmt.Errorf("ContainerStatus %s: %w", p.ctr, err)
	}
	if state := st.GetStatus().GetState(); state != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s of pod %s is %s after StartContainer, want CONTAINER_RUNNING", p.ctr, p.id, state)
	}
	return nil
}

// teardown stops the container with timeout 0 (SIGKILL: busybox sleep as
// its pid namespace's init ignores the SIGTERM a grace period would send)
// and removes it, then stops and removes the sandbox.
func (g grpcPods) teardown(ctx context.Context, p *criPod) error {
	rt := g.l.runtime
	if _, err := rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.ctr}); err != nil {
		return fmt.Errorf("StopContainer %s: %w", p.ctr, err)
	}
	if _, err := rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: p.ctr}); err != nil {
		return fmt.Errorf("RemoveContainer %s: %w", p.ctr, err)
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("StopPodSandbox %s: %w", p.id, err)
	}
	if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		return fmt.Errorf("RemovePodSandbox %s: %w", p.id, err)
	}
	return nil
}

// remove stops and removes a pod a failed step left, with what is in it.
func (g grpcPods) remove(ctx context.Context, p *criPod) {
	g.l.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
	g.l.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
}

// version is one CRI round trip: the Version call.
func (g grpcPods) version(ctx context.Context) error {
	_, err := g.l.runtime.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil {
		return fmt.Errorf("CRI Version: %w", err)
	}
	return nil
}

// podConfig is pod name's sandbox config: cgroup parent the lab's pods
// cgroup, a pid namespace per container, a hostname and a log directory.
func (l *criLab) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "lkc-bench", Uid: "uid-" + name},
		Hostname:     "bench",
		LogDirectory: filepath.Join(l.dir, "pods", name),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: l.cgroup + "/pods",
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}},
		},
	}
}

// containerConfig is the pod's container: busybox sleep 3600, logging to
// sleep.log in the pod's log directory, in a pid namespace of its own.
func (l *criLab) containerConfig() *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "sleep"},
		Image:    &runtimeapi.ImageSpec{Image: cri.BusyboxImage},
		Command:  []string{"sleep", "3600"},
		LogPath:  "sleep.log",
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}},
	}
}
