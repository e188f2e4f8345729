// Package sealscan looks for sealed passwords in a copy of a state file, as
// someone holding the file and its key file could: for tests that show a
// wiped password is gone.
package sealscan

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
)

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{16,}`)

// Recoverable returns those of passwords that can be read from the state
// file at path with its key file (path + ".key"): in the clear, or
// decrypted from any window of the file, raw or inside any base64 run (at
// each of the four alignments), of the length a sealed password has, taken
// as nonce | ciphertext | tag. Live records and freed pages alike are
// searched.
func Recoverable(path string, passwords []string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(path + ".key")
	if err != nil {
		return nil, err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(kb)))
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	blobs := [][]byte{raw}
	for _, run := range base64Run.FindAll(raw, -1) {
		for shift := 0; shift < 4 && shift < len(run); shift++ {
			r := run[shift:]
			if len(r)%4 == 1 {
				r = r[:len(r)-1]
			}
			if b, err := base64.RawStdEncoding.DecodeString(string(r)); err == nil {
				blobs = append(blobs, b)
			}
		}
	}
	var out []string
	for _, pw := range passwords {
		found := bytes.Contains(raw, []byte(pw))
		n := gcm.NonceSize() + len(pw) + gcm.Overhead()
		for _, b := range blobs {
			for i := 0; !found && i+n <= len(b); i++ {
				w := b[i : i+n]
				plain, err := gcm.Open(nil, w[:gcm.NonceSize()], w[gcm.NonceSize():], nil)
				found = err == nil && string(plain) == pw
			}
		}
		if found {
			out = append(out, pw)
		}
	}
	return out, nil
}
