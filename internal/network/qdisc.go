package network

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"
)

// The parents of the two qdiscs the bandwidth plugin adds on the host side
// of a veth: the tbf at the root (the container's ingress) and the ingress
// qdisc that redirects to its ifb (the container's egress).
const (
	tcRoot    = 0xFFFFFFFF
	tcIngress = 0xFFFFFFF1
)

// clearShaping removes the bandwidth plugin's qdiscs from the host side of
// the veths in prev. The plugin's DEL removes only its ifb device (the
// host veth normally dies with the namespace), and its ADD refuses to add
// a qdisc where one is, so a second ADD on a live container needs this.
func clearShaping(prev types.Result) error {
	res, err := current.NewResultFromResult(prev)
	if err != nil {
		return err
	}
	for _, ifc := range res.Interfaces {
		if ifc.Sandbox != "" || isBridge(ifc.Name) {
			continue
		}
		link, err := net.InterfaceByName(ifc.Name)
		if err != nil {
			continue // the plugin's ifb, which its DEL removed
		}
		for _, parent := range []uint32{tcRoot, tcIngress} {
			if err := delQdisc(link.Index, parent); err != nil {
				return fmt.Errorf("removing the qdisc of %s: %w", ifc.Name, err)
			}
		}
	}
	return nil
}

func isBridge(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge"))
	return err == nil
}

// delQdisc deletes the qdisc at parent on link index; none there is no
// error.
func delQdisc(index int, parent uint32) error {
	const tcmsgLen = 20 // family, 3 pad, ifindex, handle, parent, info
	body := make([]byte, tcmsgLen)
	ne := binary.NativeEndian
	ne.PutUint32(body[4:], uint32(index))
	ne.PutUint32(body[12:], parent)
	switch err := netlinkDo(unix.RTM_DELQDISC, 0, body); err {
	case nil, unix.ENOENT, unix.EINVAL:
		return nil
	default:
		return err
	}
}

// netlinkDo sends one rtnetlink request of type typ (with flags besides
// NLM_F_REQUEST and NLM_F_ACK) in the calling thread's network namespace
// and returns the kernel's answer, a syscall.Errno for a refusal.
func netlinkDo(typ, flags uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	msg = append(msg, body...)
	ne := binary.NativeEndian
	ne.PutUint32(msg[0:], uint32(len(msg)))
	ne.PutUint16(msg[4:], typ)
	ne.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	ne.PutUint32(msg[8:], 1)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < unix.NLMSG_HDRLEN+4 || ne.Uint16(buf[4:]) != unix.NLMSG_ERROR {
		return fmt.Errorf("unexpected netlink answer")
	}
	if errno := syscall.Errno(-int32(ne.Uint32(buf[unix.NLMSG_HDRLEN:]))); errno != 0 {
		return errno
	}
	return nil
}
