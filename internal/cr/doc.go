// Package cr is checkpoint and restore of a container: what CRIU must be
// told about it (its external mounts, joined namespaces, cgroups, stdio),
// the network namespace lkc carries across a dump in CRIU's place, the
// dump of a running container and the restore of one as a new container,
// with the knobs a migration tunes kept apart from runc's flags
// (DumpTuning, RestoreTuning).
//
// It stands between container, whose steps it uses (container.Hold for a
// dump, container.Build for a restore), and the CLI and migrate above;
// internal/checkpoint below is only the CRIU client. The mounts it stages
// in a container's state directory are named by internal/mount, so the
// container's delete releases those of a killed command without calling
// into this package.
package cr
