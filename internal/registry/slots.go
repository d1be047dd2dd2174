package registry

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// slotFile is <rundir>/slots/<n>: the generation, and the container when
// the slot is used. A free slot keeps the generation its next use gets.
type slotFile struct {
	Gen      uint64   `json:"gen"`
	Root     string   `json:"root,omitempty"`
	ID       string   `json:"id,omitempty"`
	Features Features `json:"features"`
}

func (s *slotFile) used() bool { return s.ID != "" }

// readSlots reads every slot file; missing numbers are new free slots.
func readSlots(dir string) ([]slotFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading slots: %w", err)
	}
	var slots []slotFile
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n < 0 || n > 1<<20 {
			continue // a temp file of an interrupted write
		}
		var s slotFile
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = json.Unmarshal(b, &s)
		}
		if err != nil {
			return nil, fmt.Errorf("reading slot %d: %w", n, err)
		}
		for len(slots) <= n {
			slots = append(slots, slotFile{Gen: 1})
		}
		slots[n] = s
	}
	return slots, nil
}

// writeSlot replaces slot n's file whole (temp + rename).
func writeSlot(dir string, n int, s *slotFile) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "slots", strconv.Itoa(n))
	tmp := p + ".tmp"
	err = os.WriteFile(tmp, append(b, '\n'), 0o600)
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing slot %d: %w", n, err)
	}
	return nil
}
