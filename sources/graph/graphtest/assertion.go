package graphtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// assertionRefused checks a client assertion (the certificate form of the
// client credentials grant) as Entra ID does: a JWT signed PS256 with the
// key of a certificate registered for the app, named by its
// x5t#S256 thumbprint, for this token endpoint, issued by and about the
// app, not expired. It answers the refusal itself and says so.
func (s *Server) assertionRefused(w http.ResponseWriter, r *http.Request, tenant string) bool {
	refuse := func(code int, text string) bool {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", fmt.Sprintf("AADSTS%d: %s", code, text))
		return true
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return refuse(700025, "Client assertion type is not supported.")
	}
	parts := strings.Split(r.PostForm.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return refuse(50027, "JWT token is invalid or malformed.")
	}
	var header struct {
		Alg     string `json:"alg"`
		X5tS256 string `json:"x5t#S256"`
	}
	var claims struct {
		Aud, Iss, Sub string
		Exp, Nbf      json.Number
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &claims) != nil {
		return refuse(50027, "JWT token is invalid or malformed.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return refuse(50027, "JWT token is invalid or malformed.")
	}
	var key *rsa.PublicKey
	for _, c := range s.Certificates {
		sum := sha256.Sum256(c.Raw)
		if pk, ok := c.PublicKey.(*rsa.PublicKey); ok && header.X5tS256 == base64.StdEncoding.EncodeToString(sum[:]) {
			key = pk
		}
	}
	if key == nil {
		return refuse(700027, fmt.Sprintf("The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '%s']", header.X5tS256))
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if header.Alg != "PS256" || rsa.VerifyPSS(key, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) != nil {
		return refuse(700027, "Client assertion contains an invalid signature.")
	}
	endpoint := "https://" + r.Host + "/" + tenant + "/oauth2/v2.0/token"
	exp, _ := claims.Exp.Int64()
	switch {
	case claims.Aud != endpoint:
		return refuse(700021, fmt.Sprintf("Client assertion audience claim does not match Realm issuer. Review the documentation at https://aka.ms/certCredentials . [%s]", claims.Aud))
	case claims.Iss != s.ClientID || claims.Sub != s.ClientID:
		return refuse(700023, "Client assertion issuer or subject is not the application.")
	case time.Unix(exp, 0).Before(time.Now()):
		return refuse(700024, "Client assertion is not within its valid time range.")
	}
	return false
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
