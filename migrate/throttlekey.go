package migrate

import (
	"strings"

	"github.com/banjia-mail/banjia/mail"
)

// throttleKey names what a source's server counts connections against and
// throttles: its host, except for Microsoft Graph, which limits and
// throttles each mailbox on its own (4 requests at once, a budget of
// requests per 10 minutes). Keyed by host, one throttled mailbox would
// hold back every account of the tenant and --per-host would cap a whole
// tenant at a handful of mailboxes; the Graph source keeps each mailbox's
// own limit across its sessions.
func throttleKey(e mail.Endpoint) string {
	if e.Scheme == "graph" && e.AuthzID != "" {
		return strings.ToLower(e.Host + "|" + e.Tenant + "|" + e.AuthzID)
	}
	return e.Host
}
