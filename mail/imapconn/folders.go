package imapconn

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/mail"
)

// ListFolders lists the selectable folders of the member's own namespace,
// with special-use attributes, subscriptions and status, in as few round
// trips as the server allows. Other users' and shared folders are left out.
func ListFolders(ctx context.Context, c *Conn) ([]mail.Folder, error) {
	ns, err := c.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	opts := &imap.ListOptions{}
	if c.Caps.Has(imap.CapSpecialUse) {
		opts.ReturnSpecialUse = true
	}
	// Without LIST-EXTENDED there is no way to ask go-imap for LSUB: every
	// folder then counts as subscribed.
	subscriptions := c.Caps.Has(imap.CapListExtended)
	opts.ReturnSubscribed = subscriptions
	statusOpts := &imap.StatusOptions{UIDValidity: true, NumMessages: true, UIDNext: true}
	listStatus := c.Caps.Has(imap.CapListStatus) || c.Caps.Has(imap.CapIMAP4rev2)
	if listStatus {
		opts.ReturnStatus = statusOpts
	}
	var list []*imap.ListData
	err = c.Do(ctx, func() (err error) {
		list, err = c.List("", "*", opts).Collect()
		return err
	})
	if err != nil {
		return nil, CommandError("list folders", err)
	}
	var out []mail.Folder
	var pending []*imapclient.StatusCommand
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if !ns.Own(l.Mailbox) {
			continue
		}
		f := mail.Folder{Name: l.Mailbox, Delim: l.Delim, SpecialUse: specialUse(l.Attrs), Prefix: ns.In(l.Mailbox)}
		if strings.EqualFold(f.Name, "INBOX") {
			f.Name = "INBOX"
		}
		f.Unsubscribed = subscriptions && !hasAttr(l.Attrs, imap.MailboxAttrSubscribed)
		if l.Status != nil {
			f.Validity = uint64(l.Status.UIDValidity)
			if l.Status.NumMessages != nil {
				f.Messages = *l.Status.NumMessages
			}
			f.UIDNext = uint32(l.Status.UIDNext)
		}
		out = append(out, f)
	}
	if !listStatus {
		// Pipeline one STATUS per folder rather than a round trip each.
		for _, f := range out {
			pending = append(pending, c.Status(f.Name, statusOpts))
		}
		for i, cmd := range pending {
			var st *imap.StatusData
			err := c.Do(ctx, func() (err error) { st, err = cmd.Wait(); return err })
			if err != nil {
				return nil, CommandError(fmt.Sprintf("status of %q", out[i].Name), err)
			}
			out[i].Validity = uint64(st.UIDValidity)
			if st.NumMessages != nil {
				out[i].Messages = *st.NumMessages
			}
			out[i].UIDNext = uint32(st.UIDNext)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func specialUse(attrs []imap.MailboxAttr) string {
	for _, a := range attrs {
		switch strings.ToLower(string(a)) {
		case `\sent`:
			return mail.SpecialSent
		case `\drafts`:
			return mail.SpecialDrafts
		case `\trash`:
			return mail.SpecialTrash
		case `\junk`:
			return mail.SpecialJunk
		case `\archive`:
			return mail.SpecialArchive
		case `\all`:
			return mail.SpecialAll
		case `\flagged`:
			return mail.SpecialFlagged
		}
	}
	return mail.SpecialNone
}
