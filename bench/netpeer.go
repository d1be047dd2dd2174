package main

import (
	"errors"
	"io"
	"net"
)

// The net-rate scenario's container serves an echo on netEchoPort (for
// round trips) and an endless stream of zeros on netBulkPort (traffic
// leaving the container, which its egress limit shapes).
const (
	roleNetPeer = "netpeer"
	netEchoPort = "7000"
	netBulkPort = "7001"
)

// netPeerMain is the container side: it serves both ports until killed.
func netPeerMain() error {
	echo, err := net.Listen("tcp", ":"+netEchoPort)
	if err != nil {
		return err
	}
	bulk, err := net.Listen("tcp", ":"+netBulkPort)
	if err != nil {
		return err
	}
	errs := make(chan error, 2)
	go func() { errs <- serve(echo, func(c net.Conn) { io.Copy(c, c) }) }()
	go func() {
		zeros := make([]byte, 64<<10)
		errs <- serve(bulk, func(c net.Conn) {
			for {
				if _, err := c.Write(zeros); err != nil {
					return
				}
			}
		})
	}()
	return <-errs
}

// serve runs handle for each connection l accepts, each on its own.
func serve(l net.Listener, handle func(net.Conn)) error {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			handle(c)
		}()
	}
}
