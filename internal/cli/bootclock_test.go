package cli

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lkc-containers/lkc/internal/config"
)

// TestNegated: the offset that takes a clock back to zero, in the
// kernel's form (nanoseconds added to the whole, negative, seconds).
func TestNegated(t *testing.T) {
	for _, c := range []struct {
		t    unix.Timespec
		want config.TimeOffset
	}{
		{unix.Timespec{Sec: 500, Nsec: 0}, config.TimeOffset{Clock: "boottime", Secs: -500}},
		{unix.Timespec{Sec: 500, Nsec: 250_000_000}, config.TimeOffset{Clock: "boottime", Secs: -501, Nanos: 750_000_000}},
		{unix.Timespec{Sec: 0, Nsec: 1}, config.TimeOffset{Clock: "boottime", Secs: -1, Nanos: 999_999_999}},
	} {
		if got := negated(c.t); got != c.want {
			t.Errorf("negated(%v) = %+v; want %+v", c.t, got, c.want)
		}
	}
}

// TestBootAtStartKeepsConfigsTimens: a config with a time namespace keeps
// it and its offsets as they are.
func TestBootAtStartKeepsConfigsTimens(t *testing.T) {
	own := []config.TimeOffset{{Clock: "monotonic", Secs: 10}}
	cfg := &config.Config{Namespaces: []config.Namespace{{Type: "time"}}, TimeOffsets: own}
	if err := bootAtStart(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Namespaces) != 1 || len(cfg.TimeOffsets) != 1 || cfg.TimeOffsets[0] != own[0] {
		t.Errorf("config changed: %+v %+v", cfg.Namespaces, cfg.TimeOffsets)
	}
}

// TestBootAtStartKeepsJoinedTimens: a config that joins a time namespace
// keeps it, even when it joins a pid namespace too (whose owner's time
// namespace the view would share otherwise): the config wins.
func TestBootAtStartKeepsJoinedTimens(t *testing.T) {
	nss := []config.Namespace{{Type: "pid", Path: "/nonexistent/ns/pid"}, {Type: "time", Path: "/nonexistent/ns/time"}}
	cfg := &config.Config{Namespaces: append([]config.Namespace(nil), nss...)}
	if err := bootAtStart(cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Namespaces) != len(nss) || cfg.Namespaces[1] != nss[1] || len(cfg.TimeOffsets) != 0 {
		t.Errorf("config changed: %+v %+v", cfg.Namespaces, cfg.TimeOffsets)
	}
}
