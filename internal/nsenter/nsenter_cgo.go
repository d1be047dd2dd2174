package nsenter

// #cgo CFLAGS: -Wall -Werror -O2
import "C"
