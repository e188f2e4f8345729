package web_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/internal/mailgen"
	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/ews"
	"github.com/banjia-mail/banjia/sources/ews/ewstest"
	"github.com/banjia-mail/banjia/sources/exchange"
	"github.com/banjia-mail/banjia/sources/graph/graphtest"
	"github.com/banjia-mail/banjia/sources/presets"
	"github.com/banjia-mail/banjia/state"
)

// seedEWS gives the emulator a mailbox for old with n messages (read ones
// marked so) and returns each message as the target must show it.
func seedEWS(srv *ewstest.Server, old string, seed int64, n int) map[string]int {
	inbox := &ewstest.Folder{Name: "Inbox", WellKnown: "inbox"}
	want := map[string]int{}
	for _, m := range mailgen.Mailbox(old, mailgen.Options{Seed: seed, Messages: n, Folders: []string{"INBOX"}}) {
		em := &ewstest.Message{MIME: m.Body, Received: m.Date}
		var flags []string
		for _, f := range m.Flags {
			if f == `\Seen` {
				em.Read = true
				flags = append(flags, f)
			}
		}
		inbox.Messages = append(inbox.Messages, em)
		want[mailSum(m.Body, flags, m.Date)]++
	}
	srv.AddMailbox(&ewstest.Mailbox{SMTP: old, Folders: []*ewstest.Folder{inbox}})
	return want
}

func mailSum(body []byte, flags []string, date time.Time) string {
	fl := append([]string(nil), flags...)
	sort.Strings(fl)
	return fmt.Sprintf("%x %s %d", sha256.Sum256(body), strings.Join(fl, " "), date.Unix())
}

// TestEWSJobFromDashboard: the new-job form's Exchange (EWS) page asks for
// the seed's EXCHANGE协议邮箱 fields (EWS address, EWS domain, version with
// Exchange 2010 SP2 chosen, how a login may be written) and creates the
// job the CLI's job create --mode delegated --from https://.../EWS/Exchange.asmx
// --ews-domain --ews-version would: the migration admin's NTLM login as
// CONTOSO\migadmin. Its Exchange Online page takes the application
// (tenant, client id, client secret) and moves a mailbox with app-only
// tokens, with the client secret or, as a file, the application's
// certificate. The jobs move every message exactly; no secret shows.
func TestEWSJobFromDashboard(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 3, messages: 1})
	srv := ewstest.New(t)
	srv.AddAccount(&ewstest.Account{Name: "migadmin", Password: "Ews-Adm1n!", Impersonate: true})
	entra := graphtest.New(t)
	srv.Issuer = entra
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(entra.CA)
	old := exchange.HTTPClient
	exchange.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() { exchange.HTTPClient = old })
	s.secrets = append(s.secrets, "Ews-Adm1n!", entra.Secret)
	onprem, online, certified := s.w.Users[0], s.w.Users[1], s.w.Users[2]
	want := map[string]map[string]int{onprem.Old: seedEWS(srv, onprem.Old, 1, 25), online.Old: seedEWS(srv, online.Old, 2, 20),
		certified.Old: seedEWS(srv, certified.Old, 3, 10)}
	cert, certPEM := appCertificate(t)
	entra.Certificates = []*x509.Certificate{cert}
	// A line of the private key stands for it in the secrets check.
	s.secrets = append(s.secrets, strings.Split(certPEM[strings.Index(certPEM, "-----BEGIN PRIVATE KEY-----"):], "\n")[1])

	admin := s.client("en")
	admin.get("/admin/login")
	if code, _ := admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}}); code != 200 {
		t.Fatalf("admin sign-in: %d", code)
	}
	if _, page := admin.get("/admin/jobs/new?mode=delegated"); strings.Contains(page, `id="f-ews-version"`) || !strings.Contains(page, `href="/admin/jobs/new?mode=delegated&amp;protocol=ews"`) {
		t.Fatal("the IMAP form should link to the EWS form and not show its fields")
	}
	code, page := admin.get("/admin/jobs/new?mode=delegated&protocol=ews")
	for _, w := range []string{`id="f-ews-domain"`, `<option value="Exchange2010_SP2" selected>`, `name="protocol" id="f-protocol" value="ews"`,
		`DOMAIN\name`, "https://mail.example.com/EWS/Exchange.asmx", `id="f-tenant"`, `id="f-client-id"`, `id="kind-exchange-online-ews"`} {
		if code != 200 || !strings.Contains(page, w) {
			t.Fatalf("the EWS form lacks %q (%d)", w, code)
		}
	}
	if strings.Contains(page, `id="f-ews-version" value="Exchange2016"`) || strings.Contains(page, `<option value="pop3"`) {
		t.Fatal("the EWS form offers IMAP/POP3 choices")
	}

	from := fmt.Sprintf("https://%s:%d/EWS/Exchange.asmx?insecure=1", srv.Host, srv.Port)

	// The form's check logs in with its EWS settings: the wrong domain is
	// refused, the right one accepted (NTLM as CONTOSO\ann).
	srv.AddAccount(&ewstest.Account{Name: "ann", Password: "Ann-0ld-pw", Mailbox: onprem.Old})
	s.secrets = append(s.secrets, "Ann-0ld-pw")
	for domain, ok := range map[string]bool{"FABRIKAM": false, "CONTOSO": true} {
		_, page := admin.post("/admin/check", url.Values{"mode": {"delegated"}, "protocol": {"ews"}, "source": {from}, "ews_domain": {domain},
			"ews_version": {"Exchange2010_SP2"}, "check_user": {"ann"}, "check_password": {"Ann-0ld-pw"}})
		if got := strings.Contains(page, `id="check-ok"`); got != ok || !strings.Contains(page, `id="f-ews-domain" value="`+domain+`"`) {
			t.Fatalf("check as %s\\ann: ok %v, want %v", domain, got, ok)
		}
	}
	form := url.Values{"id": {"ews"}, "mode": {"delegated"}, "protocol": {"ews"}, "source": {from},
		"ews_domain": {"CONTOSO"}, "ews_version": {"Exchange2099"}, "ews_auth": {""},
		"source_admin": {"migadmin"}, "source_admin_password": {"Ews-Adm1n!"}, "admin_login": {"authzid"},
		"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "period": {"all"}, "accounts": {fmt.Sprintf("%s,%s,,%s\n", onprem.Old, onprem.New, onprem.NewPW)}}
	code, page = admin.post("/admin/jobs", form)
	if code != http.StatusBadRequest || !strings.Contains(page, "Exchange version &#34;Exchange2099&#34;: want one of") || !strings.Contains(page, `id="f-ews-domain"`) {
		t.Fatalf("an unknown version: %d", code)
	}
	if _, err := s.w.Store.Job("ews"); err == nil {
		t.Fatal("a refused form created a job")
	}
	form.Set("ews_version", "Exchange2010_SP2")
	if code, page = admin.post("/admin/jobs", form); code != 200 || !strings.Contains(page, "ews") {
		t.Fatalf("create: %d", code)
	}
	j, err := s.w.Store.Job("ews")
	if err != nil {
		t.Fatal(err)
	}
	// What job create --from URL --ews-domain CONTOSO --ews-version
	// Exchange2010_SP2 --from-admin migadmin stores.
	cli, err := presets.ResolveEndpoint(from, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := (ews.Settings{Domain: "CONTOSO", Version: "Exchange2010_SP2"}).Apply(&cli); err != nil {
		t.Fatal(err)
	}
	d, err := mail.Delegate(&cli, mail.DelegationRequest{Admin: "migadmin"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(j.Source, cli) || !reflect.DeepEqual(j.Delegation, d) || j.ModeOf() != state.ModeDelegated {
		t.Fatalf("the form's job differs from the CLI's:\nform %+v %+v\ncli  %+v %+v", j.Source, j.Delegation, cli, d)
	}
	if j.Source.Domain != "CONTOSO" || j.Source.Version != "Exchange2010_SP2" || j.Source.User != "migadmin" {
		t.Fatalf("stored source: %+v", j.Source)
	}

	// Exchange Online: the preset's page chooses the app-only token.
	code, page = admin.get("/admin/jobs/new?mode=delegated&protocol=ews&provider=exchange-online-ews")
	if code != 200 || !strings.Contains(page, `<option value="xoauth2" selected>`) || !strings.Contains(page, `<option value="exchange-online-ews" selected>`) || !strings.Contains(page, "full_access_as_app") {
		t.Fatalf("the Exchange Online form: %d", code)
	}
	oform := url.Values{"id": {"exo"}, "mode": {"delegated"}, "protocol": {"ews"}, "provider": {"exchange-online-ews"}, "source": {from},
		"ews_version": {"Exchange2010_SP2"}, "admin_login": {"xoauth2"}, "tenant": {entra.Tenant}, "client_id": {entra.ClientID},
		"authority": {entra.URL() + "/"}, "source_admin_password": {entra.Secret},
		"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "period": {"all"}, "accounts": {fmt.Sprintf("%s,%s,,%s\n", online.Old, online.New, online.NewPW)}}
	if code, _ = admin.post("/admin/jobs", oform); code != 200 {
		t.Fatalf("create the Exchange Online job: %d", code)
	}
	xj, err := s.w.Store.Job("exo")
	if err != nil {
		t.Fatal(err)
	}
	if xj.Source.Scheme != "ews" || xj.Source.User != "" || xj.Source.Version != "Exchange2010_SP2" || xj.Delegation == nil || xj.Delegation.Method != mail.DelegateXOAUTH2 ||
		xj.Delegation.App == nil || xj.Delegation.App.Tenant != entra.Tenant || xj.Delegation.App.ClientID != entra.ClientID || xj.Delegation.App.Authority != entra.URL()+"/" {
		t.Fatalf("stored Exchange Online job: %+v %+v", xj.Source, xj.Delegation)
	}

	// The application's certificate in place of its secret, as a file;
	// not both.
	cform := url.Values{}
	for k, v := range oform {
		cform[k] = v
	}
	cform.Set("id", "exo-cert")
	cform.Set("accounts", fmt.Sprintf("%s,%s,,%s\n", certified.Old, certified.New, certified.NewPW))
	if code, page := admin.postFile("/admin/jobs", cform, "app_certificate", "banjia.pem", []byte(certPEM)); code != http.StatusBadRequest || !strings.Contains(page, "client secret or its certificate, not both") {
		t.Fatalf("secret and certificate: %d", code)
	}
	cform.Del("source_admin_password")
	if code, _ := admin.postFile("/admin/jobs", cform, "app_certificate", "banjia.pem", []byte(certPEM)); code != 200 {
		t.Fatalf("create with the certificate: %d", code)
	}

	for job, u := range map[string]int{"ews": 0, "exo": 1, "exo-cert": 2} {
		user := s.w.Users[u]
		a := s.waitAccount(job, user.Old, "succeeded", 2*time.Minute)
		if n := int64(len(flatten(s.w.Target(user)))); a.Counts.Imported != n || n != int64(sumCounts(want[user.Old])) {
			t.Errorf("%s: %+v, %d on the target", user.Old, a.Counts, n)
		}
		left := want[user.Old]
		for folder, msgs := range s.w.Target(user) {
			for _, m := range msgs {
				k := mailSum(m.Body, m.Flags, m.Date)
				if left[k] == 0 {
					t.Errorf("%s %q: unexpected or duplicate message", user.New, folder)
				}
				left[k]--
			}
		}
	}
	if st := srv.Stats(); st.Handshakes == 0 || st.Bearer == 0 || st.NoAnchor != 0 {
		t.Fatalf("NTLM logins %d, bearer requests %d, refused for the anchor %d", st.Handshakes, st.Bearer, st.NoAnchor)
	}
	s.noSecrets()
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// appCertificate is a self-signed certificate for the application and the
// PEM of it with its key, as an admin saves it from Entra ID's portal.
func appCertificate(t *testing.T) (*x509.Certificate, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "banjia"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	return cert, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}))
}
