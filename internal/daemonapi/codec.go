package daemonapi

import (
	"encoding/json"
	"fmt"

	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/jsonc"
)

// The requests `lkc create` and `run` send for a container with a daemon
// feature (hello, adopt, release) and the answers they read are encoded
// and decoded by field lists (internal/jsonc), as encoding/json would:
// its reflection builds its caches anew in every lkc process, about
// 0.3 ms of CPU per run. Every other body goes through encoding/json.

func fieldsRequest(v *Request) []jsonc.Field {
	return []jsonc.Field{jsonc.Num("v", &v.V, false), jsonc.Str("op", &v.Op, false), jsonc.Num("seq", &v.Seq, false), jsonc.Raw("body", &v.Body, true)}
}

func fieldsResponse(v *Response) []jsonc.Field {
	return []jsonc.Field{jsonc.Num("v", &v.V, false), jsonc.Num("seq", &v.Seq, false), jsonc.Raw("body", &v.Body, true),
		jsonc.Str("error", &v.Error, true), jsonc.Str("class", &v.Class, true)}
}

func fieldsHelloReply(v *HelloReply) []jsonc.Field {
	return []jsonc.Field{jsonc.Num("version", &v.Version, false), jsonc.Str("build", &v.Build, false)}
}

func fieldsAdoptReply(v *AdoptReply) []jsonc.Field {
	return []jsonc.Field{jsonc.Num("slot", &v.Slot, false), jsonc.Num("gen", &v.Gen, false), jsonc.Str("procDir", &v.ProcDir, true),
		jsonc.Strs("files", &v.Files, true), jsonc.Strs("flat", &v.Flat, true), jsonc.StructPtr("seccomp", &v.Seccomp, true, fieldsSeccompReply), jsonc.Struct("features", &v.Features, fieldsFeatures)}
}

func fieldsSeccompReply(v *SeccompReply) []jsonc.Field {
	return []jsonc.Field{jsonc.Str("path", &v.Path, false), jsonc.Str("metadata", &v.Metadata, false)}
}

func fieldsHello(v *Hello) []jsonc.Field {
	return []jsonc.Field{jsonc.Nums("versions", &v.Versions, false)}
}

func fieldsAdopt(v *Adopt) []jsonc.Field {
	return []jsonc.Field{jsonc.Str("root", &v.Root, false), jsonc.Str("id", &v.ID, false), jsonc.Struct("features", &v.Features, fieldsFeatures)}
}

func fieldsFeatures(v *hostconf.Features) []jsonc.Field {
	return []jsonc.Field{jsonc.Bool("proc", &v.Proc, true), jsonc.Str("oomPolicy", &v.OOMPolicy, true)}
}

func fieldsRelease(v *Release) []jsonc.Field {
	return []jsonc.Field{jsonc.Str("root", &v.Root, false), jsonc.Str("id", &v.ID, false), jsonc.Num("gen", &v.Gen, true)}
}

// encodeBody is json.Marshal(v), from a field list for the types above.
func encodeBody(v any) ([]byte, error) {
	switch v := v.(type) {
	case *Hello:
		return jsonc.Encode(v, fieldsHello)
	case *Adopt:
		return jsonc.Encode(v, fieldsAdopt)
	case *Release:
		return jsonc.Encode(v, fieldsRelease)
	}
	return json.Marshal(v)
}

// encodeRequest is encode(&Request{...}) of request seq of op with an
// encoded body (nil: none).
func encodeRequest(op string, seq uint64, body []byte) ([]byte, error) {
	b, err := jsonc.Encode(&Request{V: Version, Op: op, Seq: seq, Body: body}, fieldsRequest)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMessage {
		return nil, ErrTooLarge
	}
	return b, nil
}

// decodeResponse is decode of an answer.
func decodeResponse(b []byte, n int, r *Response) error {
	if n > MaxMessage {
		return ErrTooLarge
	}
	if err := jsonc.Decode(b[:n], r, fieldsResponse); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// decodeBody is json.Unmarshal(b, out), by a field list for the answers
// above.
func decodeBody(b []byte, out any) error {
	switch out := out.(type) {
	case *HelloReply:
		return jsonc.Decode(b, out, fieldsHelloReply)
	case *AdoptReply:
		return jsonc.Decode(b, out, fieldsAdoptReply)
	}
	return json.Unmarshal(b, out)
}
