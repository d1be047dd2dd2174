package seccompagent

import (
	"strconv"

	"golang.org/x/sys/unix"
)

func init() { epollWaits[strconv.Itoa(unix.SYS_EPOLL_WAIT)] = true }
