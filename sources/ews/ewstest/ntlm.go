package ewstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4" //nolint:staticcheck // NTLM is built on MD4; there is no other choice
)

// The server half of NTLMv2 (MS-NLMP) as IIS runs it in front of EWS: a
// CHALLENGE answers the client's NEGOTIATE on the same connection, and the
// AUTHENTICATE that follows must prove the password against that challenge.

const (
	flagUnicode        = 1 << 0
	flagRequestTarget  = 1 << 2
	flagNTLM           = 1 << 9
	flagAlwaysSign     = 1 << 15
	flagTargetDomain   = 1 << 16
	flagExtendedSecure = 1 << 19
	flagTargetInfo     = 1 << 23
	flag128            = 1 << 29
	flag56             = 1 << 31
)

var signature = []byte("NTLMSSP\x00")

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16LE(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// messageType is the type of an NTLM message, 0 if it is none.
func messageType(msg []byte) uint32 {
	if len(msg) < 12 || !bytes.Equal(msg[:8], signature) {
		return 0
	}
	return binary.LittleEndian.Uint32(msg[8:12])
}

// challenge builds a CHALLENGE message for domain with a fresh server challenge.
func challenge(domain string) (msg []byte, server [8]byte) {
	if _, err := rand.Read(server[:]); err != nil {
		panic(err)
	}
	name := utf16le(strings.ToUpper(domain))
	var info bytes.Buffer
	av := func(id uint16, v []byte) {
		binary.Write(&info, binary.LittleEndian, id)
		binary.Write(&info, binary.LittleEndian, uint16(len(v)))
		info.Write(v)
	}
	av(2, name) // MsvAvNbDomainName
	av(1, utf16le("EXCH01"))
	ts := make([]byte, 8)
	binary.LittleEndian.PutUint64(ts, uint64(time.Now().UnixNano()/100)+116444736000000000)
	av(7, ts) // MsvAvTimestamp
	av(0, nil)
	const head = 48
	var b bytes.Buffer
	b.Write(signature)
	binary.Write(&b, binary.LittleEndian, uint32(2))
	field := func(n, off int) {
		binary.Write(&b, binary.LittleEndian, uint16(n))
		binary.Write(&b, binary.LittleEndian, uint16(n))
		binary.Write(&b, binary.LittleEndian, uint32(off))
	}
	field(len(name), head)
	binary.Write(&b, binary.LittleEndian, uint32(flagUnicode|flagRequestTarget|flagNTLM|flagAlwaysSign|flagTargetDomain|flagExtendedSecure|flagTargetInfo|flag128|flag56))
	b.Write(server[:])
	b.Write(make([]byte, 8))
	field(info.Len(), head+len(name))
	b.Write(name)
	b.Write(info.Bytes())
	return b.Bytes(), server
}

// authenticated is who an AUTHENTICATE message names.
type authenticated struct {
	User, Domain string
	nt           []byte
}

var errMalformed = errors.New("malformed NTLM AUTHENTICATE message")

func parseAuthenticate(msg []byte) (authenticated, error) {
	if messageType(msg) != 3 || len(msg) < 64 {
		return authenticated{}, errMalformed
	}
	field := func(at int) ([]byte, error) {
		n := int(binary.LittleEndian.Uint16(msg[at:]))
		off := int(binary.LittleEndian.Uint32(msg[at+4:]))
		if off < 0 || off+n > len(msg) {
			return nil, errMalformed
		}
		return msg[off : off+n], nil
	}
	nt, err := field(20)
	if err != nil {
		return authenticated{}, err
	}
	dom, err := field(28)
	if err != nil {
		return authenticated{}, err
	}
	user, err := field(36)
	if err != nil {
		return authenticated{}, err
	}
	if len(nt) < 16+28 {
		return authenticated{}, errors.New("NTLMv1 or LM response: only NTLMv2 is accepted")
	}
	return authenticated{User: fromUTF16LE(user), Domain: fromUTF16LE(dom), nt: nt}, nil
}

// verify says whether a's NTLMv2 response proves password against server.
func (a authenticated) verify(password string, server [8]byte) bool {
	h := md4.New()
	h.Write(utf16le(password))
	key := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(a.User)+a.Domain))
	proof := hmacMD5(key, server[:], a.nt[16:])
	return hmac.Equal(proof, a.nt[:16])
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	m := hmac.New(md5.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}
