package dovecot

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

func msg(i int, date time.Time) []byte {
	return []byte(fmt.Sprintf("From: a@x\r\nTo: b@y\r\nSubject: test %d\r\nDate: %s\r\n\r\nbody %d\r\n", i, date.Format(time.RFC1123Z), i))
}

func TestDeliverAndSnapshot(t *testing.T) {
	s := StartT(t, Options{})
	if err := s.AddUser("u@x.test", "pw"); err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2017, 3, 4, 5, 6, 7, 0, time.UTC)
	want := map[string][]Message{
		"INBOX": {{Body: msg(1, d0), Flags: []string{`\Seen`, "work"}, Date: d0}, {Body: msg(2, d0), Date: d0.Add(time.Hour)}},
		"Sent":  {{Body: msg(3, d0), Flags: []string{`\Answered`, `\Flagged`, `\Draft`}, Date: d0.Add(48 * time.Hour)}},
		"客户/北京": {{Body: msg(4, d0), Flags: []string{"$Forwarded", `\Seen`}, Date: d0.Add(72 * time.Hour)}},
	}
	for f, msgs := range want {
		if err := s.Deliver("u@x.test", f, msgs); err != nil {
			t.Fatal(err)
		}
	}
	got, delim, err := Snapshot(s.IMAPAddr, "u@x.test", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if delim != "." {
		t.Fatalf("delimiter %q", delim)
	}
	for f, msgs := range want {
		name := strings.ReplaceAll(f, "/", ".")
		g := got[name]
		if len(g) != len(msgs) {
			t.Fatalf("%q: %d messages, want %d (have %v)", f, len(g), len(msgs), keysOf(got))
		}
		for i, m := range msgs {
			if string(g[i].Body) != string(m.Body) {
				t.Fatalf("%q %d: body %q", f, i, g[i].Body)
			}
			if !g[i].Date.Equal(m.Date) {
				t.Fatalf("%q %d: date %v, want %v", f, i, g[i].Date, m.Date)
			}
			wantFlags := append([]string(nil), m.Flags...)
			if strings.Join(sortedCopy(wantFlags), " ") != strings.Join(g[i].Flags, " ") {
				t.Fatalf("%q %d: flags %v, want %v", f, i, g[i].Flags, m.Flags)
			}
			if i > 0 && g[i].UID <= g[i-1].UID {
				t.Fatal("UIDs not ascending")
			}
		}
	}
}

func keysOf(m map[string][]SnapMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestSdboxAppendDeliver(t *testing.T) {
	s := StartT(t, Options{Format: "sdbox"})
	s.AddUser("u@x.test", "pw")
	d := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.Deliver("u@x.test", "a/b", []Message{{Body: msg(1, d), Flags: []string{`\Seen`}, Date: d}}); err != nil {
		t.Fatal(err)
	}
	got, delim, err := Snapshot(s.IMAPAddr, "u@x.test", "pw")
	if err != nil || delim != "/" || len(got["a/b"]) != 1 {
		t.Fatalf("%v %q %v", err, delim, keysOf(got))
	}
}

func TestTLSMasterUserAndPOP3(t *testing.T) {
	s := StartT(t, Options{TLS: true, MasterUser: "admin", MasterPassword: "adminpw"})
	s.AddUser("member@x.test", "memberpw")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CertPEM)
	c, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("member@x.test*admin", "adminpw").Wait(); err != nil {
		t.Fatalf("master LOGIN: %v", err)
	}
	c.Close()
	c, err = imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Authenticate(sasl.NewPlainClient("member@x.test", "admin", "adminpw")); err != nil {
		t.Fatalf("master PLAIN: %v", err)
	}
	c.Close()
	conn, err := net.Dial("tcp", s.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.HasPrefix(line, "+OK") {
		t.Fatalf("POP3 greeting %q", line)
	}
}

func TestEncodeUTF7(t *testing.T) {
	for in, want := range map[string]string{"INBOX": "INBOX", "客户": "&W6JiNw-", "a&b": "a&-b", "Entwürfe": "Entw&APw-rfe"} {
		if got := encodeUTF7(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}
