package cri

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The CRI runs' images, made from local files: no registry is reachable,
// and a pod needs a sandbox image as well as its containers'.
const (
	PauseImage   = "localhost/lkc-clients-pause:test"
	BusyboxImage = "localhost/lkc-clients-busybox:cri"
)

// MakeImages writes the pause image (pauseSrc, test/clients/testdata/pause.c,
// compiled static) and the busybox image (the rootfs tarball rootfsTar) as
// OCI archives in tmp, for `ctr images import`.
func MakeImages(tmp, pauseSrc, rootfsTar string) (pause, busybox string, err error) {
	layer, err := makePauseLayer(tmp, pauseSrc)
	if err != nil {
		return "", "", err
	}
	pause = filepath.Join(tmp, "pause-oci.tar")
	if err := WriteOCIArchive(pause, PauseImage, layer, []string{"/pause"}); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", pause, err)
	}
	busybox = filepath.Join(tmp, "busybox-cri-oci.tar")
	if err := WriteOCIArchive(busybox, BusyboxImage, rootfsTar, []string{"/bin/sh"}); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", busybox, err)
	}
	return pause, busybox, nil
}

// makePauseLayer compiles src into a static binary and packs it, as
// /pause, into a layer tarball.
func makePauseLayer(tmp, src string) (string, error) {
	bin := filepath.Join(tmp, "pause")
	if out, err := exec.Command("musl-gcc", "-static", "-Os", "-s", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling %s: %v: %s", src, err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layer := filepath.Join(tmp, "pause-layer.tar")
	return layer, os.WriteFile(layer, buf.Bytes(), 0o644)
}

// ociBlob is one content-addressed file of an OCI image layout.
type ociBlob struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`

	data []byte
}

func newBlob(mediaType string, data []byte) ociBlob {
	return ociBlob{MediaType: mediaType, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(data)), Size: len(data), data: data}
}

// archiveFile is one file of an image archive.
type archiveFile struct {
	name string
	data []byte
}

// WriteOCIArchive writes an OCI image archive (an image layout in a tar,
// as `ctr images import` reads it) of a one-layer linux/amd64 image named
// ref, whose layer is the uncompressed tarball layerTar.
func WriteOCIArchive(path, ref, layerTar string, entrypoint []string) error {
	layerData, err := os.ReadFile(layerTar)
	if err != nil {
		return err
	}
	layer := newBlob("application/vnd.oci.image.layer.v1.tar", layerData)
	cfgData, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": entrypoint},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layer.Digest}},
	})
	if err != nil {
		return err
	}
	cfg := newBlob("application/vnd.oci.image.config.v1+json", cfgData)
	manData, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfg,
		"layers":        []ociBlob{layer},
	})
	if err != nil {
		return err
	}
	man := newBlob("application/vnd.oci.image.manifest.v1+json", manData)
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []map[string]any{{
			"mediaType": man.MediaType, "digest": man.Digest, "size": man.Size,
			"annotations": map[string]string{"io.containerd.image.name": ref},
		}},
	})
	if err != nil {
		return err
	}
	files := []archiveFile{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
	}
	for _, b := range []ociBlob{layer, cfg, man} {
		files = append(files, archiveFile{"blobs/sha256/" + strings.TrimPrefix(b.Digest, "sha256:"), b.data})
	}
	return writeTar(path, []string{"blobs/", "blobs/sha256/"}, files)
}

// writeTar writes a tarball of directories dirs and then files.
func writeTar(path string, dirs []string, files []archiveFile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	for _, file := range files {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(file.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
