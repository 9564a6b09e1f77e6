package testaddr

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// FailingListener fails its first Fails Accepts as a process out of file
// descriptors does (EMFILE), then accepts as the listener it wraps.
type FailingListener struct {
	net.Listener
	Fails atomic.Int32
}

// Accept fails while Fails lasts, then accepts.
func (l *FailingListener) Accept() (net.Conn, error) {
	if l.Fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}
