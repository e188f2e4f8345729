package imapconn

import (
	"net"
	"time"
)

// IdleTimeout bounds how long a server may stay silent while a reply is
// owed. go-imap waits for replies without any deadline, so a server that
// stalls would otherwise hang a lane for ever. 30 s is long for any reply
// to start; a server that needs longer (SELECT of a very large folder on a
// slow server) can be given it with --idle-timeout.
var IdleTimeout = 30 * time.Second

// ConnectTimeout bounds the TCP connect. A server that answers does so in
// well under a second; one that has not answered in 15 s sits behind a
// firewall that drops packets, and waiting longer only holds an account.
var ConnectTimeout = 15 * time.Second

// LoginTimeout bounds what follows the connect: TLS, the greeting and the
// login. A busy server may take seconds to check a password, so it is
// longer than the connect.
var LoginTimeout = 30 * time.Second

// A peer that is gone (a dead host, a dropped NAT entry, a cable pulled)
// sends nothing and answers nothing: TCP would retransmit for a quarter of
// an hour before the kernel gives up. Keep-alive probes notice it in
// deadPeerIdle + deadPeerProbes x deadPeerInterval while the connection
// is quiet, and deadPeerUnacked bounds how long data we sent may go
// unacknowledged (TCP_USER_TIMEOUT, Linux) while it is busy.
const (
	deadPeerIdle     = 10 * time.Second
	deadPeerInterval = 5 * time.Second
	deadPeerProbes   = 3
	deadPeerUnacked  = 30 * time.Second
)

// Dialer is how every mail connection is made (IMAP and POP3).
func Dialer() *net.Dialer {
	return &net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: deadPeerIdle, Interval: deadPeerInterval, Count: deadPeerProbes},
		Control:         userTimeout(deadPeerUnacked),
	}
}
