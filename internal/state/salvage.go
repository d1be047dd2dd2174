package state

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// Salvage reads what a corrupt state file still holds, for a delete that
// must clean up after it: the members before the point where the file
// breaks off. The config is written last, so a file cut short keeps the
// init's identity, the rootfs bind and the cgroup paths unless it lost
// nearly everything.
// A value that reaches the end of the data may itself be cut short (a pid
// missing digits) and is dropped. Members not found stay zero; ID is the
// directory's name.
func (d *Dir) Salvage() *State {
	s := &State{ID: filepath.Base(d.path)}
	data, err := os.ReadFile(filepath.Join(d.path, stateFile))
	if err != nil {
		return s
	}
	members := map[string]any{
		"bundle": &s.Bundle, "rootfs": &s.Rootfs, "created": &s.Created, "owner": &s.Owner,
		"initPid": &s.InitPid, "initStart": &s.InitStart, "rootfsMount": &s.RootfsMount,
		"cgroupPaths": &s.CgroupPaths, "cgroupParents": &s.CgroupParents,
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return s
	}
	for {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return s
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil || dec.InputOffset() >= int64(len(data)) {
			return s
		}
		if dst, ok := members[key]; ok {
			_ = json.Unmarshal(raw, dst) // a member of the wrong type stays zero
		}
	}
}
