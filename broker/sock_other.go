//go:build !linux

package broker

import (
	"io"
	"net"
)

// newSockIO: raw socket I/O is Linux-only (sock_linux.go); elsewhere connections use
// net.Conn.
func newSockIO(net.Conn) io.ReadWriter { return nil }
