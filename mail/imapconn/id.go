package imapconn

import (
	"runtime/debug"
	"sync/atomic"

	"github.com/emersion/go-imap/v2"

	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/wording"
)

// ClientVersion is the version banjia gives in IMAP ID. It is read from the
// build (a module version, or the VCS revision); a main package that knows
// its release may set it before dialling.
var ClientVersion = buildVersion()

// clientID is what banjia says about itself in IMAP ID (RFC 2971): who it
// is and nothing about the account or the machine. go-imap's ID sends only
// RFC 2971's fields, so NetEase's own "support-email" is not among them; its
// servers accept an ID with name and version alone.
func clientID() *imap.IDData {
	return &imap.IDData{
		Name:       "banjia",
		Version:    ClientVersion,
		Vendor:     "banjia",
		SupportURL: "https://github.com/banjia-mail/banjia",
	}
}

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// skipID turns the ID step off, for tests that show what a server which
// demands it does without it.
var skipID atomic.Bool

// identify sends IMAP ID after login when the server offers it. NetEase
// (163, 126, yeah.net, 网易企业邮) logs a client in but answers SELECT and
// EXAMINE with "Unsafe Login" until it has identified itself; other servers
// ignore what the client says. Only servers that advertise ID are sent it:
// some that do not close the connection on an unknown command.
//
// It runs after LOGIN's answer, never pipelined behind it (Courier drops
// commands that arrive with LOGIN). A server that refuses the command (NO or
// BAD) does not fail the login: most do not need it, and one that does
// says so at the first EXAMINE, which CommandError explains. A connection
// that breaks here does fail it, for it cannot be used any more.
func (c *Conn) identify() error {
	if skipID.Load() {
		return nil
	}
	// go-imap asks for the capabilities again after LOGIN unless the
	// server sent them with its OK, and Caps waits for that answer.
	if !c.Client.Caps().Has(imap.CapID) {
		return nil
	}
	if c.idf != nil {
		c.idf.active.Store(true)
	}
	if _, err := c.Client.ID(clientID()).Wait(); err != nil && !isIMAPError(err) {
		return fault.Coded(fault.Retry, wording.New("net.lost.id", "addr", c.Endpoint.Addr()), err)
	}
	return nil
}

// SkipID turns the IMAP ID step off until the returned function is called,
// for tests that show what a server which demands it does without it.
func SkipID() (restore func()) {
	skipID.Store(true)
	return func() { skipID.Store(false) }
}
