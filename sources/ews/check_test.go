package ews_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
)

// TestCheck: banjia check walks an EWS source to the folder count, through
// impersonation of one member, and stops at the step that fails.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Adm1n!", Impersonate: true})
	srv.AddAccount(&ewstest.Account{Name: "helpdesk", Password: "Help!"})
	mb := Seed(srv, "gus@contoso.com", 25, 6, 0)

	r := check.Check(ctx, srv.Endpoint(`CONTOSO\migadmin`, "Adm1n!", "gus@contoso.com"))
	last := r.Steps[len(r.Steps)-1]
	if !r.OK || last.Name != "folders" || last.Detail != fmt.Sprintf("%d folders, 25 messages (and 3 system folders, such as Exchange's Outbox and Sync Issues, left behind unless --system-folders)", len(mb.Want)) {
		t.Fatalf("check: %+v", r)
	}
	if tls := r.Steps[2]; tls.Name != "tls" || !strings.HasPrefix(tls.Detail, "TLS 1.3") {
		t.Errorf("tls step: %+v", tls)
	}

	r = check.Check(ctx, srv.Endpoint(`CONTOSO\helpdesk`, "Help!", "gus@contoso.com"))
	last = r.Steps[len(r.Steps)-1]
	if r.OK || last.Name != "login" || !strings.Contains(last.Detail, "give it the ApplicationImpersonation role") {
		t.Fatalf("admin without the role: %+v", r)
	}

	e := srv.Endpoint(`CONTOSO\migadmin`, "Adm1n!", "gus@contoso.com")
	e.RootCAs = nil
	r = check.Check(ctx, e)
	last = r.Steps[len(r.Steps)-1]
	if r.OK || last.Name != "tls" || !strings.Contains(last.Detail, "not trusted") {
		t.Fatalf("untrusted certificate: %+v", r)
	}
}
