package netns

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// A minimal netlink client: requests with an acknowledgement, dumps, and
// the attribute encoding. Enough to read and rebuild a namespace's links,
// addresses and routes; nothing more.

// conn is a netlink socket of the namespace of the thread that opened it.
type conn struct {
	fd  int
	seq uint32
	buf []byte
}

func dial(proto int) (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &conn{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (c *conn) close() { unix.Close(c.fd) }

// message is one answer of a dump: its type and its payload.
type message struct {
	typ  uint16
	data []byte
}

// dump sends a NLM_F_DUMP request and returns every answer up to NLMSG_DONE.
func (c *conn) dump(typ uint16, body []byte) ([]message, error) {
	return c.request(typ, unix.NLM_F_DUMP, body, true)
}

// do sends a request and waits for its acknowledgement.
func (c *conn) do(typ, flags uint16, body []byte) error {
	_, err := c.request(typ, flags|unix.NLM_F_ACK, body, false)
	return err
}

// request sends one message and collects the answers until the
// acknowledgement or, for a dump, NLMSG_DONE. (Which one it is cannot be
// told from the flags: NLM_F_EXCL of a new object is NLM_F_MATCH of a get.)
func (c *conn) request(typ, flags uint16, body []byte, dump bool) ([]message, error) {
	c.seq++
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(b[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags|unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(b[8:], c.seq)
	b = append(b, body...)
	if err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, err
	}
	var out []message
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		done, err := c.parse(c.buf[:n], dump, &out)
		if done || err != nil {
			return out, err
		}
	}
}

// parse walks one datagram of answers; done says the request is answered.
func (c *conn) parse(b []byte, dump bool, out *[]message) (done bool, err error) {
	for len(b) >= unix.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return true, errors.New("netlink: truncated message")
		}
		typ, seq := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:])
		data := b[unix.NLMSG_HDRLEN:n]
		b = b[min(nlmAlign(n), len(b)):]
		if seq != c.seq {
			continue
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(data) < 4 {
				return true, errors.New("netlink: short error message")
			}
			if errno := -int32(binary.NativeEndian.Uint32(data)); errno != 0 {
				return true, unix.Errno(errno)
			}
			if !dump {
				return true, nil
			}
		default:
			*out = append(*out, message{typ: typ, data: append([]byte(nil), data...)})
		}
	}
	return false, nil
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// attr is one route attribute: its type (without the nested and
// byte-order flags) and value, and where it starts in the payload it was
// parsed from, so a value can be rewritten in place.
type attr struct {
	typ uint16
	val []byte
	off int
}

// parseAttrs reads the attributes that follow a fixed header of hdr bytes.
func parseAttrs(b []byte, hdr int) ([]attr, error) {
	if len(b) < hdr {
		return nil, fmt.Errorf("netlink: %d-byte payload shorter than its %d-byte header", len(b), hdr)
	}
	var out []attr
	for off := hdr; off+4 <= len(b); {
		n := int(binary.NativeEndian.Uint16(b[off:]))
		if n < 4 || off+n > len(b) {
			return nil, errors.New("netlink: truncated attribute")
		}
		typ := binary.NativeEndian.Uint16(b[off+2:]) & nlaTypeMask
		out = append(out, attr{typ: typ, val: b[off+4 : off+n], off: off})
		off += rtaAlign(n)
	}
	return out, nil
}

func findAttr(attrs []attr, typ uint16) ([]byte, bool) {
	for _, a := range attrs {
		if a.typ == typ {
			return a.val, true
		}
	}
	return nil, false
}

// appendAttr appends one attribute, padded to its alignment.
func appendAttr(b []byte, typ uint16, val []byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[:], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(b, h[:]...)
	b = append(b, val...)
	return append(b, make([]byte, rtaAlign(len(val))-len(val))...)
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

func cstring(s string) []byte { return append([]byte(s), 0) }

// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const nlaTypeMask = 0x3fff
