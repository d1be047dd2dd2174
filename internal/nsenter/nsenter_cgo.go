package nsenter

//go:generate go run errnos_gen.go

// #cgo CFLAGS: -Wall -Werror -O2
import "C"
