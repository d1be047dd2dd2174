// Package evacuate is the whole-host form of checkpoint, restore and
// migrate: every container of a root dumped into one directory with a
// manifest, so a reboot (a kernel upgrade) loses no work; every container
// of a manifest brought back; every container of a root moved to an `lkc
// serve` (evacuating a host). Each container goes through the
// single-container operation (internal/cr, internal/migrate) with its own
// undo, in parallel up to a bound, and one container's failure stops no
// other.
//
// It stands above cr and migrate and beside the CLI, which only parses
// flags and prints what it returns (docs/evacuate.md).
package evacuate
