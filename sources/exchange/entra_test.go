package exchange_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banjia-mail/banjia/sources/exchange"
)

// entra is a token endpoint as Entra ID serves it for the client credentials
// flow: the OpenID metadata azidentity reads first, then the token itself.
// No Microsoft endpoint is reachable from tests, so this stands in for it
// and the real azidentity client talks to it.
type entra struct {
	srv              *httptest.Server
	tenant, clientID string
	secret           string
	// scope is the resource tokens are granted for (Exchange Online's
	// global one unless a test plays a national cloud).
	scope string
	// lifetime is how long a token is accepted (default: the hour it
	// claims); a shorter one makes tokens expire mid-session.
	lifetime time.Duration
	requests atomic.Int64
	mu       sync.Mutex
	tokens   map[string]time.Time // when issued
}

func newEntra(t *testing.T, tenant, clientID, secret string) *entra {
	e := &entra{tenant: tenant, clientID: clientID, secret: secret, scope: exchange.Scope, tokens: map[string]time.Time{}}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.srv.Close)
	old := exchange.HTTPClient
	exchange.HTTPClient = e.srv.Client()
	t.Cleanup(func() { exchange.HTTPClient = old })
	return e
}

// Authority is what sources.App.Authority is set to.
func (e *entra) Authority() string { return e.srv.URL + "/" }

func (e *entra) valid(token string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	at, ok := e.tokens[token]
	return ok && (e.lifetime == 0 || time.Since(at) < e.lifetime)
}

func (e *entra) serve(w http.ResponseWriter, r *http.Request) {
	base := e.srv.URL + "/" + e.tenant
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.URL.Path == "/"+e.tenant+"/v2.0/.well-known/openid-configuration":
		json.NewEncoder(w).Encode(map[string]any{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	case r.URL.Path == "/"+e.tenant+"/oauth2/v2.0/token" && r.Method == http.MethodPost:
		e.requests.Add(1)
		r.ParseForm()
		fail := func(code int, aad int, text string) {
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client",
				"error_description": fmt.Sprintf("AADSTS%d: %s", aad, text), "error_codes": []int{aad}})
		}
		switch {
		case r.Form.Get("grant_type") != "client_credentials":
			fail(400, 900144, "The request body must contain the following parameter: 'grant_type'.")
		case r.Form.Get("client_id") != e.clientID:
			fail(400, 700016, "Application with identifier '"+r.Form.Get("client_id")+"' was not found in the directory.")
		case r.Form.Get("client_secret") != e.secret:
			fail(401, 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.")
		case !slices.Contains(strings.Fields(r.Form.Get("scope")), e.scope):
			fail(400, 70011, "The provided value for the input parameter 'scope' is not valid.")
		default:
			e.mu.Lock()
			tok := fmt.Sprintf("eyJ0eXAi.app-token-%d", len(e.tokens)+1)
			e.tokens[tok] = time.Now()
			expires := 3599
			if e.lifetime > 0 {
				expires = max(int(e.lifetime/time.Second), 1)
			}
			e.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": expires, "ext_expires_in": expires, "access_token": tok})
		}
	default:
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"error":"not_found","error_description":"%s"}`, strings.ReplaceAll(r.URL.Path, `"`, ""))
	}
}
