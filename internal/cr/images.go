package cr

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/lkc-containers/lkc/internal/checkpoint"
)

// What a dump and a restore share: the image and work directories CRIU
// gets as fds, CRIU's common options, the page server's address.

// criuOpts starts the CRIU options a dump and a restore share.
func criuOpts(d *imageDirs, cgMode string, emptyNS []string, verbose bool) (*checkpoint.Opts, error) {
	mode, err := cgroupMode(cgMode)
	if err != nil {
		return nil, err
	}
	empty, err := emptyNSFlags(emptyNS)
	if err != nil {
		return nil, err
	}
	return &checkpoint.Opts{
		ImagesDirFd: d.imageFd(), WorkDirFd: d.workFd(), LogLevel: criuLogLevel(verbose),
		EmptyNS: empty, ManageCgroups: true, ManageCgroupsMode: mode,
		NotifyScripts: true, NetworkLock: networkLock,
	}, nil
}

// checkCriuOpts refuses the option values criuOpts and the page server's
// address would refuse, before a checkpoint freezes the container or a
// checkpoint or a restore makes its image and work directories: bad input
// leaves nothing behind.
func checkCriuOpts(cgMode string, emptyNS []string, pageServer string) error {
	if _, err := cgroupMode(cgMode); err != nil {
		return err
	}
	if _, err := emptyNSFlags(emptyNS); err != nil {
		return err
	}
	if pageServer == "" {
		return nil
	}
	_, _, err := splitHostPort(pageServer)
	return err
}

// imageDirs are the open images and work directories CRIU gets as fds.
type imageDirs struct {
	imagePath, workPath string
	image, work         *os.File
}

// openDirs opens the image and work directories, making them when create
// is set (a dump). A restore makes only the work directory, and only once
// the images are there: a wrong image path makes nothing.
func openDirs(imagePath, workPath string, create bool) (*imageDirs, error) {
	if imagePath == "" {
		return nil, errors.New("no image path given")
	}
	if workPath == "" {
		workPath = imagePath
	}
	d := &imageDirs{imagePath: imagePath, workPath: workPath}
	var err error
	if d.image, err = openDir(imagePath, create); err != nil {
		return nil, err
	}
	if d.work, err = openDir(workPath, true); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func openDir(path string, create bool) (*os.File, error) {
	if create {
		if err := os.MkdirAll(path, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", path, err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening checkpoint directory: %w", err)
	}
	return f, nil
}

// CRIU opens the directories through /proc/<lkc>/fd/N (the pid it reads
// from its RPC peer): these are lkc's fd numbers.
func (d *imageDirs) imageFd() int { return int(d.image.Fd()) }
func (d *imageDirs) workFd() int  { return int(d.work.Fd()) }

func (d *imageDirs) close() {
	for _, f := range []*os.File{d.image, d.work} {
		if f != nil {
			f.Close()
		}
	}
}

func splitHostPort(hp string) (string, int, error) {
	i := len(hp) - 1
	for i >= 0 && hp[i] != ':' {
		i--
	}
	if i <= 0 {
		return "", 0, fmt.Errorf("page server %q: want host:port", hp)
	}
	port, err := strconv.Atoi(hp[i+1:])
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("page server %q: bad port", hp)
	}
	host := hp[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, port, nil
}

// criuLogLevel is CRIU's -v: 2 logs errors and warnings, 4 everything.
func criuLogLevel(verbose bool) int {
	if verbose {
		return 4
	}
	return 2
}

// dialPageServer connects to the page server at hostPort ("host:port"),
// checked by checkCriuOpts.
func dialPageServer(hostPort string) (*checkpoint.PageServerConn, error) {
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return nil, err
	}
	return checkpoint.DialPageServer(host, port)
}
