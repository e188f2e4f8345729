package ewstest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

// TestStrict: the emulator refuses what Exchange refuses, so that a client
// passing against it speaks EWS as Exchange wants it.
func TestStrict(t *testing.T) {
	srv := New(t)
	srv.Auth = "both"
	srv.FindCountLimit = 1000
	srv.AddAccount(&Account{Name: "ann", Password: "pw", Mailbox: "ann@contoso.com"})
	srv.AddMailbox(&Mailbox{SMTP: "ann@contoso.com", Folders: []*Folder{{Name: "Inbox", WellKnown: "inbox"}}})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CA)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	hc := &http.Client{Transport: tr}

	post := func(auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL(), strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(`CONTOSO\ann:pw`))
	env := func(header, body string) string {
		return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + NSSoap + `" xmlns:t="` + NSTypes + `" xmlns:m="` + NSMessages + `"><soap:Header>` +
			header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`
	}
	version := `<t:RequestServerVersion Version="Exchange2010_SP2"/>`
	getInbox := `<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>`
	findItem := func(max string) string {
		return `<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="` + max +
			`" Offset="0" BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>`
	}

	for _, c := range []struct {
		name, auth, body string
		status           int
		want             string
	}{
		{"no credentials", "", env(version, getInbox), 401, ""},
		{"wrong Basic password", "Basic " + base64.StdEncoding.EncodeToString([]byte(`CONTOSO\ann:nope`)), env(version, getInbox), 401, ""},
		{"good Basic", basic, env(version, getInbox), 200, `ResponseClass="Success"`},
		{"no RequestServerVersion", basic, env("", getInbox), 500, "RequestServerVersion header is missing"},
		{"a version newer than the server", basic, env(`<t:RequestServerVersion Version="Exchange2016"/>`, getInbox), 500, "ErrorInvalidServerVersion"},
		{"operation in the types namespace", basic, env(version, strings.ReplaceAll(getInbox, "m:GetFolder", "t:GetFolder")), 500, "ErrorInvalidRequest"},
		{"not a SOAP 1.1 envelope", basic, strings.Replace(env(version, getInbox), NSSoap, "http://www.w3.org/2003/05/soap-envelope", 1), 500, "ErrorSchemaValidation"},
		{"a page at the limit", basic, env(version, findItem("1000")), 200, `ResponseClass="Success"`},
		{"a page over EWSFindCountLimit", basic, env(version, findItem("1001")), 200, "ErrorExceededFindCountLimit"},
		{"impersonation without the role", basic, env(version+`<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>ann@contoso.com</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`, getInbox), 500, "ErrorImpersonateUserDenied"},
	} {
		status, body := post(c.auth, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: HTTP %d, want %d with %q:\n%s", c.name, status, c.status, c.want, body)
		}
	}

	// NTLM: an AUTHENTICATE answering a challenge of another connection, or
	// made with the wrong password, is refused.
	neg, _ := ntlmssp.NewNegotiateMessage("", "")
	status, _ := post("NTLM "+base64.StdEncoding.EncodeToString(neg), env(version, getInbox))
	if status != 401 {
		t.Fatalf("NEGOTIATE: HTTP %d", status)
	}
	ch, _ := challenge("CONTOSO")
	auth, err := ntlmssp.NewAuthenticateMessage(ch, `CONTOSO\ann`, "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections() // a new connection: no challenge issued on it
	if status, _ := post("NTLM "+base64.StdEncoding.EncodeToString(auth), env(version, getInbox)); status != 401 {
		t.Fatalf("AUTHENTICATE without a challenge on the connection: HTTP %d", status)
	}
	// The whole handshake on one connection, with a wrong and a right password.
	for _, pw := range []string{"wrong", "pw"} {
		req, _ := http.NewRequest("POST", srv.URL(), strings.NewReader(env(version, getInbox)))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.SetBasicAuth(`CONTOSO\ann`, pw)
		resp, err := (&http.Client{Transport: ntlmssp.Negotiator{RoundTripper: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[string]int{"wrong": 401, "pw": 200}[pw]; resp.StatusCode != want {
			t.Errorf("NTLM with password %q: HTTP %d, want %d", pw, resp.StatusCode, want)
		}
	}
	if st := srv.Stats(); st.Handshakes != 1 {
		t.Errorf("%d NTLM logins accepted, want 1", st.Handshakes)
	}
}

// tokens is an issuer whose good tokens are listed.
type tokens map[string]bool

func (t tokens) Valid(tok string) bool { return t[tok] }

// TestAppOnly: as Exchange Online, a bearer token is taken only if the
// issuer gave it and it has not expired, and an app-only request must
// impersonate the mailbox and name it in X-AnchorMailbox.
func TestAppOnly(t *testing.T) {
	srv := New(t)
	srv.Issuer = tokens{"good": true}
	srv.AddMailbox(&Mailbox{SMTP: "ann@contoso.com", Folders: []*Folder{{Name: "Inbox", WellKnown: "inbox"}}})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CA)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	imp := `<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>ann@contoso.com</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>`
	env := func(header string) string {
		return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="` + NSSoap + `" xmlns:t="` + NSTypes + `" xmlns:m="` + NSMessages + `"><soap:Header><t:RequestServerVersion Version="Exchange2010_SP2"/>` +
			header + `</soap:Header><soap:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></soap:Body></soap:Envelope>`
	}
	for _, c := range []struct {
		name, token, anchor, header string
		status                      int
		want                        string
	}{
		{"expired or foreign token", "stale", "ann@contoso.com", imp, 401, ""},
		{"no impersonation", "good", "ann@contoso.com", "", 500, "ErrorInvalidExchangeImpersonationHeaderData"},
		{"no X-AnchorMailbox", "good", "", imp, 500, "X-AnchorMailbox header is required"},
		{"X-AnchorMailbox of another mailbox", "good", "bob@contoso.com", imp, 500, "does not name the impersonated mailbox"},
		{"impersonated and anchored", "good", "ANN@contoso.com", imp, 200, `ResponseClass="Success"`},
	} {
		req, _ := http.NewRequest("POST", srv.URL(), strings.NewReader(env(c.header)))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("Authorization", "Bearer "+c.token)
		if c.anchor != "" {
			req.Header.Set("X-AnchorMailbox", c.anchor)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: HTTP %d, want %d with %q:\n%s", c.name, resp.StatusCode, c.status, c.want, body)
		}
		if c.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", c.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if st := srv.Stats(); st.Expired != 1 || st.NoAnchor != 3 || st.Bearer != 4 {
		t.Errorf("expired %d, refused for the anchor %d, bearer %d", st.Expired, st.NoAnchor, st.Bearer)
	}
}
