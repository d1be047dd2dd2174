package cr

import (
	"strings"
	"testing"

	"github.com/lkc-containers/lkc/internal/config"
	"github.com/lkc-containers/lkc/internal/lsm"
)

// --lsm-profile and --lsm-mount-context reach CRIU's request as
// lsm_profile and lsm_mount_context; without them neither is set, so the
// images' own profile and contexts apply.
func TestRestoreRequestCarriesLSMOpts(t *testing.T) {
	d := &imageDirs{imagePath: t.TempDir()}
	d.workPath = d.imagePath
	cfg := &config.Config{}
	o := RestoreOpts{LSMProfile: "selinux:system_u:system_r:container_t:s0:c1,c2",
		LSMMountContext: "system_u:object_r:container_file_t:s0:c1,c2"}
	req, err := restoreRequest(o, RestoreTuning{}, cfg, nil, d, "/root", "")
	if err != nil {
		t.Fatal(err)
	}
	if req.Opts.LSMProfile != o.LSMProfile || req.Opts.LSMMountContext != o.LSMMountContext {
		t.Errorf("request has profile %q, mount context %q; want %q, %q",
			req.Opts.LSMProfile, req.Opts.LSMMountContext, o.LSMProfile, o.LSMMountContext)
	}
	if req, err = restoreRequest(RestoreOpts{}, RestoreTuning{}, cfg, nil, d, "/root", ""); err != nil {
		t.Fatal(err)
	}
	if req.Opts.LSMProfile != "" || req.Opts.LSMMountContext != "" {
		t.Errorf("no flags, yet the request sets %q, %q", req.Opts.LSMProfile, req.Opts.LSMMountContext)
	}
}

// The values CRIU takes pass; the others are refused naming the flag, and
// so is a module the host does not run.
func TestCheckLSMOpts(t *testing.T) {
	for _, c := range []struct{ profile, mount string }{
		{"apparmor:lkc-default", ""},
		{"selinux:system_u:system_r:container_t:s0", ""},
		{"", "system_u:object_r:container_file_t:s0:c1,c2"},
		{"", "system_u:object_r:container_file_t"},
	} {
		if err := checkLSMFormat(c.profile, c.mount); err != nil {
			t.Errorf("%q, %q refused: %v", c.profile, c.mount, err)
		}
	}
	for _, c := range []struct{ profile, mount, want string }{
		{"lkc-default", "", "--lsm-profile"},
		{"apparmor:", "", "--lsm-profile"},
		{"smack:x", "", "--lsm-profile"},
		{"apparmor:a\nb", "", "--lsm-profile"},
		{"selinux:container_t", "", "not an SELinux label"},
		{"", "container_file_t", "--lsm-mount-context"},
		{"", `system_u:object_r:t:s0",rw`, "--lsm-mount-context"},
		{"", "u::t", "--lsm-mount-context"},
	} {
		err := checkLSMFormat(c.profile, c.mount)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q, %q: %v, want an error naming %s", c.profile, c.mount, err, c.want)
		}
	}
	none := lsm.Host{Sys: t.TempDir()}
	for _, c := range []struct{ profile, mount, want string }{
		{"apparmor:p", "", "AppArmor is not enabled"},
		{"selinux:u:r:t", "", "SELinux is not enabled"},
		{"", "u:r:t", "SELinux is not enabled"},
	} {
		err := checkLSMOpts(c.profile, c.mount, none)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q, %q on a host without LSMs: %v, want %q", c.profile, c.mount, err, c.want)
		}
	}
	if err := checkLSMOpts("", "", none); err != nil {
		t.Errorf("no flags refused: %v", err)
	}
}
