package network

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// masqChain is the nat chain through which the bridge plugin masquerades
// the addresses of container id on network name (its ipMasq), the same
// in iptables and ip6tables: "CNI-" and the first 24 hex digits of
// SHA-512(name id), 28 characters, the most iptables takes.
func masqChain(name, id string) string {
	sum := sha512.Sum512([]byte(name + id))
	return "CNI-" + hex.EncodeToString(sum[:])[:24]
}

// removeMasq removes the masquerade chains of the bridge plugins of list
// for container id, and the POSTROUTING rules that jump to them, from
// iptables and ip6tables, where they are still there. The bridge plugin
// (Debian 12's 1.1.1) removes them at DEL only for the addresses it finds
// on the interface in the namespace: a DEL without the namespace (a
// reboot-style loss) leaves them. A family without its iptables command
// has nothing to remove.
func removeMasq(list *libcni.NetworkConfigList, id string) error {
	masqueraded := false
	for _, p := range list.Plugins {
		masqueraded = masqueraded || p.Network.Type == "bridge"
	}
	if !masqueraded {
		return nil
	}
	chain := masqChain(list.Name, id)
	var errs []error
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			continue
		}
		if err := removeChain(cmd, chain); err != nil {
			errs = append(errs, fmt.Errorf("removing the masquerade chain %s (%s): %w", chain, cmd, err))
		}
	}
	return errors.Join(errs...)
}

// removeChain deletes chain of the nat table, after the POSTROUTING rules
// that jump to it, with the iptables command cmd (iptables, ip6tables).
// Rules are deleted by their whole specification, never by number, which
// a plugin adding rules meanwhile would shift. A nat table that cannot be
// listed (no such table in the kernel) holds no chain of the plugin's.
func removeChain(cmd, chain string) error {
	out, err := iptablesOut(cmd, "-S", "POSTROUTING")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(out, "\n") {
		args := splitRule(line)
		if len(args) < 2 || args[0] != "-A" || !jumpsTo(args, chain) {
			continue
		}
		if _, err := iptablesOut(cmd, append([]string{"-D"}, args[1:]...)...); err != nil {
			return err
		}
	}
	if _, err := iptablesOut(cmd, "-S", chain); err != nil {
		return nil // no such chain
	}
	if _, err := iptablesOut(cmd, "-F", chain); err != nil {
		return err
	}
	_, err = iptablesOut(cmd, "-X", chain)
	return err
}

// iptablesOut runs cmd on the nat table, waiting for the xtables lock, and
// returns its output.
func iptablesOut(cmd string, args ...string) (string, error) {
	c := exec.Command(cmd, append([]string{"-w", "-t", "nat"}, args...)...)
	out, err := c.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			return "", fmt.Errorf("%s: %s", strings.Join(c.Args, " "), strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("%s: %w", strings.Join(c.Args, " "), err)
	}
	return string(out), nil
}

// jumpsTo says whether the rule args (as iptables -S prints it, split)
// jumps to chain.
func jumpsTo(args []string, chain string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-j" && args[i+1] == chain {
			return true
		}
	}
	return false
}

// splitRule splits a line of iptables -S into its arguments: words
// separated by spaces, where a double-quoted word may hold spaces and
// backslash-escaped quotes (a comment: "name: \"net\" id: \"...\"").
func splitRule(line string) []string {
	var args []string
	var word strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && quoted && i+1 < len(line):
			i++
			word.WriteByte(line[i])
		case ch == '"':
			quoted, inWord = !quoted, true
		case ch == ' ' && !quoted:
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		args = append(args, word.String())
	}
	return args
}
