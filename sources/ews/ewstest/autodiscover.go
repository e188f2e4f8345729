package ewstest

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// AutodiscoverPath is where Exchange answers POX Autodiscover.
const AutodiscoverPath = "/autodiscover/autodiscover.xml"

// Autodiscover's namespaces (the Outlook provider's request and response schemas).
const (
	NSAutodiscoverRequest  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	NSAutodiscover         = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	NSAutodiscoverResponse = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// autodiscover answers a POX request with the mailbox's EWS URL.
func (s *Server) autodiscover(w http.ResponseWriter, r *http.Request) {
	var req struct {
		XMLName xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 Autodiscover"`
		Email   string   `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 Request>EMailAddress"`
		Schema  string   `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006 Request>AcceptableResponseSchema"`
	}
	if err := xml.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Schema != NSAutodiscoverResponse {
		http.Error(w, "bad Autodiscover request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.stats.Requests["Autodiscover"]++
	mb := s.mailboxes[strings.ToLower(req.Email)]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if mb == nil {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><Response><Error Time="10:00:00" Id="1"><ErrorCode>500</ErrorCode><Message>The email address can't be found.</Message></Error></Response></Autodiscover>`, NSAutodiscover)
		return
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><Response xmlns="%s"><User><AutoDiscoverSMTPAddress>%s</AutoDiscoverSMTPAddress></User><Account><AccountType>email</AccountType><Action>settings</Action>`+
		`<Protocol><Type>EXCH</Type><Server>EXCH01.contoso.local</Server><EwsUrl>%s</EwsUrl></Protocol><Protocol><Type>EXPR</Type><Server>%s</Server><EwsUrl>%s</EwsUrl></Protocol></Account></Response></Autodiscover>`,
		NSAutodiscover, NSAutodiscoverResponse, esc(mb.SMTP), esc(s.URL()), esc(s.Host), esc(s.URL()))
}
