package graph

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/banjia-mail/banjia/mail"
)

// Graph addresses a mailbox as /users/{id or userPrincipalName}. A member is
// known to a job by their mail address, which in many tenants is not the
// UPN (ann@contoso.com signs in as ann.lee@contoso.onmicrosoft.com): the
// address is only the label, and requests name the directory's id.

// ids remembers, per tenant, the directory id of each mail address seen in
// a directory listing or looked up once.
var ids = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

func idKey(c cloudConf, e mail.Endpoint, address string) string {
	return strings.ToLower(strings.Join([]string{c.host, e.Tenant, address}, "|"))
}

func rememberID(c cloudConf, e mail.Endpoint, address, id string) {
	if address == "" || id == "" {
		return
	}
	ids.Lock()
	defer ids.Unlock()
	ids.m[idKey(c, e, address)] = id
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// mailboxID is what Graph's paths call the mailbox labelled address: an id
// given as such, the id the directory has for that mail address, or, when
// the directory has none or the app may not read it (no User.Read.All),
// the address itself (right whenever it is also the UPN).
func mailboxID(ctx context.Context, e mail.Endpoint, address string) (string, error) {
	if guid.MatchString(address) {
		return address, nil
	}
	dir, err := newClient(e, "")
	if err != nil {
		return "", err
	}
	key := idKey(dir.cloud, e, address)
	ids.Lock()
	id := ids.m[key]
	ids.Unlock()
	if id != "" {
		return id, nil
	}
	filter := fmt.Sprintf("mail eq '%s'", strings.ReplaceAll(address, "'", "''"))
	page, err := dir.users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id", "mail", "userPrincipalName"}},
	})
	if ae := asAPIError(err); ae != nil && ae.Status == http.StatusForbidden {
		slog.Debug("graph: cannot look up the mailbox id (no User.Read.All); addressing it by its mail address", "mailbox", address)
		return address, nil
	}
	if err != nil {
		return "", dir.classify("looking up mailbox "+address+" in the directory", address, err)
	}
	if vals := page.GetValue(); len(vals) == 1 {
		id = deref(vals[0].GetId())
	}
	if id == "" {
		return address, nil
	}
	rememberID(dir.cloud, e, address, id)
	return id, nil
}
