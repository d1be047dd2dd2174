package clients

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

// The CRI tests' images, made here from local files: no registry is
// reachable, and a pod needs a sandbox image as well as its containers'.
const (
	pauseImage   = "localhost/lkc-clients-pause:test"
	busyboxImage = "localhost/lkc-clients-busybox:cri"
)

// makePauseLayer compiles testdata/pause.c into a static binary and packs
// it, as /pause, into a layer tarball.
func makePauseLayer(tmp string) (string, error) {
	bin := filepath.Join(tmp, "pause")
	src := filepath.Join(repo, "test", "clients", "testdata", "pause.c")
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

// writeOCIArchive writes an OCI image archive (an image layout in a tar,
// as `ctr images import` reads it) of a one-layer linux/amd64 image named
// ref, whose layer is the uncompressed tarball layerTar.
func writeOCIArchive(path, ref, layerTar string, entrypoint []string) error {
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

// makeCRIImages writes the pause and busybox images of the CRI tests as
// OCI archives in tmp.
func makeCRIImages(tmp string) (pause, busybox string, err error) {
	layer, err := makePauseLayer(tmp)
	if err != nil {
		return "", "", err
	}
	pause = filepath.Join(tmp, "pause-oci.tar")
	if err := writeOCIArchive(pause, pauseImage, layer, []string{"/pause"}); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", pause, err)
	}
	busybox = filepath.Join(tmp, "busybox-cri-oci.tar")
	if err := writeOCIArchive(busybox, busyboxImage, imageTar, []string{"/bin/sh"}); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", busybox, err)
	}
	return pause, busybox, nil
}
