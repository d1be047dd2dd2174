// Command bindv6 binds a TCP socket of the IPv6 family, with or without
// IPV6_V6ONLY, to an address and port, and says what bind(2) returned:
// what the busybox rootfs's nc cannot do (it sets no IPV6_V6ONLY).
//
//	bindv6 v6only|dual ADDR PORT
//
// It prints "ok" or the error, and exits 0 either way; 2 on bad usage or
// when the socket cannot be made.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) != 4 || (os.Args[1] != "v6only" && os.Args[1] != "dual") {
		fail("usage: bindv6 v6only|dual ADDR PORT")
	}
	addr, err := netip.ParseAddr(os.Args[2])
	if err != nil || !addr.Is6() {
		fail(fmt.Sprintf("%q is not an IPv6 address", os.Args[2]))
	}
	port, err := strconv.Atoi(os.Args[3])
	if err != nil {
		fail(err.Error())
	}
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM, 0)
	if err != nil {
		fail(err.Error())
	}
	v6only := 0
	if os.Args[1] == "v6only" {
		v6only = 1
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, v6only); err != nil {
		fail(err.Error())
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet6{Port: port, Addr: addr.As16()}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ok")
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bindv6:", msg)
	os.Exit(2)
}
