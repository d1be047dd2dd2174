package spec

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lkc-containers/lkc/internal/config"
)

func TestConvertHooks(t *testing.T) {
	s := goodSpec(t)
	five := 5
	s.Hooks = &specs.Hooks{
		Prestart:       []specs.Hook{{Path: "/bin/pre"}},
		CreateRuntime:  []specs.Hook{{Path: "/bin/cr", Args: []string{"cr", "-x"}, Env: []string{"A=1"}, Timeout: &five}},
		StartContainer: []specs.Hook{{Path: "/bin/sc"}},
		Poststop:       []specs.Hook{{Path: "/bin/ps1"}, {Path: "/bin/ps2"}},
	}
	c, err := Convert(s, "ctr", "/bundle")
	if err != nil {
		t.Fatal(err)
	}
	want := config.Hooks{
		Prestart:       []config.Hook{{Path: "/bin/pre"}},
		CreateRuntime:  []config.Hook{{Path: "/bin/cr", Args: []string{"cr", "-x"}, Env: []string{"A=1"}, Timeout: 5}},
		StartContainer: []config.Hook{{Path: "/bin/sc"}},
		Poststop:       []config.Hook{{Path: "/bin/ps1"}, {Path: "/bin/ps2"}},
	}
	if !reflect.DeepEqual(c.Hooks, want) {
		t.Fatalf("hooks %+v, want %+v", c.Hooks, want)
	}
}

func TestConvertRefusesBadHooks(t *testing.T) {
	zero := 0
	cases := []struct {
		hooks specs.Hooks
		want  string
	}{
		{specs.Hooks{Poststart: []specs.Hook{{Path: "hook"}}}, `hooks.poststart[0]: path "hook" is not absolute`},
		{specs.Hooks{CreateContainer: []specs.Hook{{Path: "/ok"}, {Path: "/h", Timeout: &zero}}},
			"hooks.createContainer[1] /h: timeout 0 is not positive"},
	}
	for _, c := range cases {
		s := goodSpec(t)
		s.Hooks = &c.hooks
		_, err := Convert(s, "ctr", "/bundle")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func TestFeaturesListHooks(t *testing.T) {
	got := strings.Join(Features().Hooks, " ")
	if got != "prestart createRuntime createContainer startContainer poststart poststop" {
		t.Fatalf("features hooks %q", got)
	}
}
