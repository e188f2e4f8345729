package graph

import (
	"context"
	"fmt"
	"strings"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
)

// User is one account of the source directory.
type User struct {
	ID                string
	Mail              string
	UserPrincipalName string
	DisplayName       string
	// Enabled is false for shared mailboxes and blocked users, whose mail
	// may still be worth moving.
	Enabled bool
}

// Users lists the directory's users whose mail address is in domain, for a
// job that takes its accounts from the source directory. e is the app's
// endpoint (AuthzID unused); the app needs User.Read.All.
func Users(ctx context.Context, e mail.Endpoint, domain string) ([]User, error) {
	domain = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(domain)), "@")
	if domain == "" || strings.ContainsAny(domain, "'\"/\\ ?#&@") {
		return nil, fault.New(fault.Account, fmt.Sprintf("%q is not a domain name", domain), nil)
	}
	c, err := newClient(e, "")
	if err != nil {
		return nil, err
	}
	// endswith on mail is an "advanced query": Graph answers it only with
	// $count=true and ConsistencyLevel: eventual.
	filter := fmt.Sprintf("endswith(mail,'@%s')", domain)
	count, top := true, int32(999)
	hdr := abstractions.NewRequestHeaders()
	hdr.Add("ConsistencyLevel", "eventual")
	page, err := c.users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		Headers: hdr,
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{
			Filter: &filter, Count: &count, Top: &top,
			Select: []string{"id", "mail", "userPrincipalName", "displayName", "accountEnabled"},
		},
	})
	var out []User
	for {
		if err != nil {
			return nil, c.classify("listing the users of "+domain, "", err)
		}
		for _, u := range page.GetValue() {
			usr := userOf(u)
			// Its mailbox will be read under the id, not the address.
			rememberID(c.cloud, e, usr.Mail, usr.ID)
			out = append(out, usr)
		}
		next := deref(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
		page, err = c.users().WithUrl(next).Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{Headers: hdr})
	}
}

func userOf(u models.Userable) User {
	return User{
		ID:                deref(u.GetId()),
		Mail:              deref(u.GetMail()),
		UserPrincipalName: deref(u.GetUserPrincipalName()),
		DisplayName:       deref(u.GetDisplayName()),
		Enabled:           deref(u.GetAccountEnabled()),
	}
}
