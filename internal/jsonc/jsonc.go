// Package jsonc is what the JSON codecs that internal/codegen generates
// call: a decoder and an encoder that follow encoding/json's rules without
// its reflection. encoding/json builds, on the first use of a type, field
// tables and codecs for every type reachable from it: for specs.Spec 0.55-0.7
// ms of every `lkc run` and `create`, for the state file 0.3-0.5 ms of every
// command that writes or reads one (docs/kernel.md), against 0.05 ms for the
// work itself. The per-type code (which key is which field, omitempty) is
// generated from the Go types by `go generate`; this package holds the rest,
// the same for every type.
package jsonc
