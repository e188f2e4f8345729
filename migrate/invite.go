package migrate

import (
	"errors"
)

// Invitation asks for the invitation mails of a member-triggered job (the
// seed's 发送提醒邮件给所有搬家成员): to every listed member who has not
// started and was not invited yet, or, with Again, also to those invited
// before; Accounts (old addresses) limits it to those.
type Invitation struct {
	Job      string
	Accounts []string
	Again    bool
	Who      string
}

// Inviter sends invitations and says how many went out. banjia serve sets
// one: it holds the mail settings and the portal's address the links name.
type Inviter func(Invitation) (int, error)

// ErrNoInviter says this process cannot send invitations.
var ErrNoInviter = errors.New("invitations are sent by banjia serve, which knows the portal's address and the mail settings: run this while banjia serve (with --smtp and --public-url) holds the state file")

// SetInviter makes f the sender of invitations asked through the manager
// (the control socket's invite).
func (m *Manager) SetInviter(f Inviter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inviter = f
}

// Invite sends invitations through the inviter.
func (m *Manager) Invite(inv Invitation) (int, error) {
	m.mu.Lock()
	f := m.inviter
	m.mu.Unlock()
	if f == nil {
		return 0, ErrNoInviter
	}
	return f(inv)
}
