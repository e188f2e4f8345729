package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// An online (in-place) archive is a second mailbox, not the well-known
// archive folder, and Graph's mail API does not reach it: only the beta
// mailbox import and export API does, and it exports items in an opaque
// format, not MIME. So the source says an archive stays behind, per
// account: it lists a folder ArchiveFolder holding one entry whose fetch
// fails with the reason, which leaves the account "finished with failures"
// with that reason in its report instead of 搬家成功.

// ArchiveFolder is the folder that stands for a mailbox's online archive.
const ArchiveFolder = "Online Archive (not copied)"

// archiveKey is the one entry of ArchiveFolder; its folder id is archiveID.
const (
	archiveKey = "online-archive"
	archiveID  = "\x00online-archive"
)

// archiveDate dates the entry: fixed, so every listing shows the same one.
var archiveDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// hasArchive asks beta's mailbox discovery (exchangeSettings) whether the
// mailbox has an online archive. When the app may not ask (User.Read.All
// missing) or the cloud has no such API, it cannot tell: that is logged,
// and the account is not held back for it; sure says whether the answer
// is Graph's.
func (s *Source) hasArchive(ctx context.Context) (has, sure bool) {
	u := fmt.Sprintf("https://%s/beta/users/%s/settings/exchange", s.c.cloud.host, url.PathEscape(s.id))
	resp, err := s.c.get(ctx, u, nil)
	if err != nil {
		slog.Warn("graph: cannot tell whether the mailbox has an online archive", "mailbox", s.mailbox, "err", err)
		return false, false
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		slog.Warn("graph: cannot tell whether the mailbox has an online archive (the app needs User.Read.All)", "mailbox", s.mailbox, "err", responseError(resp))
		return false, false
	}
	var body struct {
		InPlaceArchiveMailboxID string `json:"inPlaceArchiveMailboxId"`
		Value                   []struct {
			InPlaceArchiveMailboxID string `json:"inPlaceArchiveMailboxId"`
		} `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return false, false
	}
	if body.InPlaceArchiveMailboxID != "" {
		return true, true
	}
	for _, v := range body.Value {
		if v.InPlaceArchiveMailboxID != "" {
			return true, true
		}
	}
	return false, true
}

func archiveFolder() mail.Folder {
	return mail.Folder{Name: ArchiveFolder, Delim: '/', Validity: validity(archiveID), Messages: 1}
}

func isArchive(id string) bool { return id == archiveID }

func (s *Source) archiveEntry() mail.Message {
	return mail.Message{Key: archiveKey, Date: archiveDate}
}

func (s *Source) archiveError(m mail.Message) error {
	return &mail.MessageError{Message: m, Err: fault.New(fault.Message,
		fmt.Sprintf("the online archive of %s is not copied: Microsoft Graph's mail API does not reach archive mailboxes (move it with Exchange's own tools, or into the primary mailbox first)", s.mailbox), nil)}
}
