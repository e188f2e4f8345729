package ews

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// errNoEWS says the server answered 404 where EWS was looked for.
var errNoEWS = errors.New("no EWS at this URL")

const (
	nsAutodiscoverRequest  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	nsAutodiscoverResponse = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)

// discover asks the server's POX Autodiscover for the EWS URL of email's
// mailbox, for servers that do not serve EWS at the usual path.
func (c *client) discover(ctx context.Context, email string) (string, error) {
	if email == "" {
		return "", errors.New("no address to ask Autodiscover about (log in with an address, or give the EWS URL)")
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>%s</AcceptableResponseSchema></Request></Autodiscover>`,
		nsAutodiscoverRequest, esc(email), nsAutodiscoverResponse)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/autodiscover/autodiscover.xml", bytes.NewReader([]byte(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.SetBasicAuth(c.user, c.password)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", c.transportError(err)
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("Autodiscover answered HTTP %s", resp.Status)
	}
	var ad struct {
		Response struct {
			Error struct {
				Message string `xml:"Message"`
			} `xml:"Error"`
			Protocols []struct {
				Type   string `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Type"`
				EwsURL string `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a EwsUrl"`
			} `xml:"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a Account>Protocol"`
		} `xml:"Response"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ad); err != nil {
		return "", fmt.Errorf("reading the Autodiscover answer: %w", err)
	}
	var found string
	for _, p := range ad.Response.Protocols {
		// EXPR is the address from outside the server's network, EXCH from inside.
		if p.EwsURL != "" && (found == "" || p.Type == "EXPR") {
			found = p.EwsURL
		}
	}
	if found == "" {
		if msg := strings.TrimSpace(ad.Response.Error.Message); msg != "" {
			return "", fmt.Errorf("Autodiscover: %s", msg)
		}
		return "", errors.New("Autodiscover named no EWS URL")
	}
	if u, err := url.Parse(found); err != nil || u.Scheme != "https" {
		return "", fmt.Errorf("Autodiscover named %q, not an https URL", found)
	}
	return found, nil
}
