package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/wording"
)

// appOnly is the rest of a check of Exchange Online's app-only EWS (Auth
// xoauth2, one member in AuthzID), after the TLS step. Each of its steps
// fails for a different person's reason: the EWS URL (the address given),
// the token (the app registration in Entra ID), the mailbox (the
// application's Exchange permission and its RBAC scope).
func appOnly(ctx context.Context, e mail.Endpoint, r *Report, add func(Step) bool) {
	none := wording.Reason{}
	if !add(ewsURL(ctx, e)) {
		return
	}
	app := ""
	if e.App != nil {
		app = e.App.ClientID
	}
	tctx, cancel := context.WithTimeout(ctx, 2*StepTimeout)
	_, err := mail.Token(tctx, e)
	cancel()
	if err != nil {
		// What Entra ID said can quote the request: never the secret.
		add(step("token", false, wording.Plain(hide(fault.Reason(err), e.Password)), wording.New("check.hint.token")))
		return
	}
	tenant := ""
	if e.App != nil {
		tenant = e.App.Tenant
	}
	add(step("token", true, wording.New("check.token.ok", "app", app, "tenant", tenant), none))

	lctx, cancel := context.WithTimeout(ctx, 3*StepTimeout)
	defer cancel()
	src, err := sources.Open(lctx, e)
	if err != nil {
		why := fault.WhyOf(err)
		if !why.Coded() {
			why = wording.Plain(hide(fault.Reason(err), e.Password))
		}
		add(step("mailbox", false, why, wording.New("check.hint.app")))
		return
	}
	defer src.Close()
	add(step("mailbox", true, wording.New("check.mailbox.ok", "member", e.AuthzID, "app", app), none))
	r.OK = folders(lctx, src, add)
}

// ewsURL asks the EWS URL without credentials: Exchange answers 401 where
// EWS is served, and 404 where the path or host is not Exchange's.
func ewsURL(ctx context.Context, e mail.Endpoint) Step {
	cfg, err := e.TLSConfig()
	if err != nil {
		return step("ews", false, wording.Plain(err.Error()), wording.New("check.hint.cafile"))
	}
	path := e.Path
	if path == "" {
		path = "/EWS/Exchange.asmx"
	}
	url := "https://" + e.Addr() + path
	if e.Port == 443 {
		url = "https://" + e.Host + path
	}
	tr := &http.Transport{TLSClientConfig: cfg, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	defer tr.CloseIdleConnections()
	hctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(hctx, http.MethodPost, url, strings.NewReader(""))
	if err != nil {
		return step("ews", false, wording.Plain(err.Error()), wording.Reason{})
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return step("ews", false, wording.New("check.ews.fail", "url", url, "err", err.Error()), wording.Reason{})
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode < 300:
		return step("ews", true, wording.New("check.ews.ok", "url", url), wording.Reason{})
	case resp.StatusCode == http.StatusNotFound:
		return step("ews", false, wording.New("check.ews.notfound", "url", url), wording.New("check.hint.ewsurl"))
	}
	return step("ews", false, wording.New("check.ews.fail", "url", url, "err", fmt.Sprintf("HTTP %d", resp.StatusCode)), wording.New("check.hint.ewsurl"))
}

// hide cuts secret out of what a library said.
func hide(said, secret string) string {
	if secret == "" {
		return said
	}
	return strings.ReplaceAll(said, secret, "***")
}
