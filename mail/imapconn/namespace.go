package imapconn

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Namespaces are where a session's folders live (RFC 2342). Personal is the
// member's own folders: prefix "" and delimiter "/" or "." on Dovecot and
// on Cyrus with altnamespace, prefix "INBOX." on Courier and on Cyrus
// without it. Others lists the prefixes of other users' and shared
// folders, which a migration leaves alone.
type Namespaces struct {
	Prefix string
	Delim  rune
	Others []string
}

// Namespaces asks the server once per session: NAMESPACE where offered,
// else the delimiter from LIST "" "" with no prefix.
func (c *Conn) Namespaces(ctx context.Context) (Namespaces, error) {
	if c.ns != nil {
		return *c.ns, nil
	}
	ns := Namespaces{Delim: '/'}
	if c.Caps.Has(imap.CapNamespace) || c.Caps.Has(imap.CapIMAP4rev2) {
		var data *imap.NamespaceData
		err := c.Do(ctx, func() (err error) {
			data, err = c.Namespace().Wait()
			return err
		})
		if err != nil {
			return ns, CommandError("ask the server for its namespaces", err)
		}
		if len(data.Personal) > 0 {
			ns.Prefix, ns.Delim = data.Personal[0].Prefix, data.Personal[0].Delim
		}
		for _, d := range append(append([]imap.NamespaceDescriptor(nil), data.Other...), data.Shared...) {
			if d.Prefix != "" {
				ns.Others = append(ns.Others, d.Prefix)
			}
		}
	}
	if ns.Delim == 0 || !(c.Caps.Has(imap.CapNamespace) || c.Caps.Has(imap.CapIMAP4rev2)) {
		var list []*imap.ListData
		err := c.Do(ctx, func() (err error) {
			list, err = c.List("", "", nil).Collect()
			return err
		})
		if err != nil {
			return ns, CommandError("list the hierarchy delimiter", err)
		}
		if len(list) > 0 && list[0].Delim != 0 {
			ns.Delim = list[0].Delim
		}
	}
	if ns.Delim == 0 {
		ns.Delim = '/'
	}
	c.ns = &ns
	return ns, nil
}

// Own reports whether a listed name is one of the member's own folders,
// not another user's or a shared one.
func (n Namespaces) Own(name string) bool {
	if strings.EqualFold(name, "INBOX") {
		return true
	}
	for _, p := range n.Others {
		if hasPrefixFold(name, p) || strings.EqualFold(name+string(n.Delim), p) {
			return false
		}
	}
	return true
}

// In is the prefix a name begins with, if it is in the personal namespace's.
func (n Namespaces) In(name string) string {
	if n.Prefix != "" && hasPrefixFold(name, n.Prefix) && len(name) > len(n.Prefix) {
		return n.Prefix
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
