//go:build !linux

package imapconn

import (
	"syscall"
	"time"
)

// userTimeout does nothing where TCP_USER_TIMEOUT does not exist; keep-alive
// still notices a dead peer on a quiet connection.
func userTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
