package main

import (
	"slices"
	"testing"
)

func TestSetBenchProcess(t *testing.T) {
	spec := map[string]any{
		"ociVersion": "1.2.0",
		"process":    map[string]any{"terminal": true, "args": []any{"sh"}, "cwd": "/"},
	}
	if err := setBenchProcess(spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	if spec["ociVersion"] != specVersion || proc["terminal"] != false || proc["cwd"] != "/" {
		t.Errorf("patched spec = %v", spec)
	}
	if args, _ := proc["args"].([]string); !slices.Equal(args, []string{"/bin/true"}) {
		t.Errorf("args = %v, want [/bin/true]", proc["args"])
	}
	if err := setBenchProcess(map[string]any{}); err == nil {
		t.Error("spec without process accepted")
	}
}

func TestSetSleepProcess(t *testing.T) {
	spec := map[string]any{
		"ociVersion": "1.2.0",
		"process":    map[string]any{"terminal": true, "args": []any{"sh"}},
		"root":       map[string]any{"path": "rootfs", "readonly": true},
	}
	if err := setSleepProcess(spec, "/tmp/b/rootfs"); err != nil {
		t.Fatal(err)
	}
	proc, root := spec["process"].(map[string]any), spec["root"].(map[string]any)
	if args, _ := proc["args"].([]string); !slices.Equal(args, execSleepArgs) {
		t.Errorf("args = %v, want %v", proc["args"], execSleepArgs)
	}
	if root["path"] != "/tmp/b/rootfs" || root["readonly"] != true || spec["ociVersion"] != specVersion || proc["terminal"] != false {
		t.Errorf("patched spec = %v", spec)
	}
	if err := setSleepProcess(map[string]any{"process": map[string]any{}}, "/r"); err == nil {
		t.Error("spec without root accepted")
	}
}

func TestSplitList(t *testing.T) {
	if got := splitList(" lkc, ,crun,"); !slices.Equal(got, []string{"lkc", "crun"}) {
		t.Errorf("splitList = %q", got)
	}
	if got := splitList(""); got != nil {
		t.Errorf("splitList(\"\") = %q, want nil", got)
	}
}
