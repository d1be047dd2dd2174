package daemonapi

import (
	"encoding/json"

	"github.com/lkc-containers/lkc/internal/hostconf"
	"github.com/lkc-containers/lkc/internal/jsonc"
)

// The requests `lkc create` and `run` send for a container with a daemon
// feature (hello, adopt, release) are encoded from field lists
// (internal/jsonc), byte for byte as encoding/json would: its reflection
// builds its caches anew in every lkc process, about 0.2 ms of CPU per
// run. Every other message goes through encoding/json.

func fieldsRequest(v *Request) []jsonc.Field {
	return []jsonc.Field{jsonc.Num("v", &v.V, false), jsonc.Str("op", &v.Op, false), jsonc.Num("seq", &v.Seq, false)}
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
	b, err := jsonc.Encode(&Request{V: Version, Op: op, Seq: seq}, fieldsRequest)
	if err != nil {
		return nil, err
	}
	if len(body) > 0 { // spliced in as the last member, "body" (omitempty)
		b = append(append(append(b[:len(b)-1], `,"body":`...), body...), '}')
	}
	if len(b) > MaxMessage {
		return nil, ErrTooLarge
	}
	return b, nil
}
