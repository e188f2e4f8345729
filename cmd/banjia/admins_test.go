package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestReadAdmins(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hash := string(h)
	for _, c := range []struct {
		name, file, err string
		want            []string
	}{
		{"two admins, a comment and blank lines", "# admins\n\nalice:" + hash + "\nbob:" + hash + "\n", "", []string{"alice", "bob"}},
		{"a plain password", "alice:" + hash + "\nbob:secret\n", "line 2: bob's password is not a bcrypt hash (make the line with htpasswd -nB bob)", nil},
		{"an MD5 htpasswd line", "carol:$apr1$abc$def\n", "line 1: carol's password is not a bcrypt hash", nil},
		{"no colon", "alice\n", "line 1: want NAME:BCRYPT-HASH", nil},
		{"twice", "alice:" + hash + "\nalice:" + hash + "\n", "line 2: alice is there twice", nil},
		{"empty", "# nobody\n", "names no admin", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "admins")
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readAdmins(path, "admin")
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil || len(got) != len(c.want) {
				t.Fatalf("got %v %v", got, err)
			}
			for _, n := range c.want {
				if bcrypt.CompareHashAndPassword([]byte(got[n]), []byte("pw")) != nil {
					t.Fatalf("%s: hash not kept", n)
				}
			}
		})
	}
	if _, err := readAdmins(filepath.Join(t.TempDir(), "missing"), "admin"); err == nil || !strings.Contains(err.Error(), "admins file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDashboardUsers(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name string, names ...string) string {
		var b strings.Builder
		for _, n := range names {
			b.WriteString(n + ":" + string(h) + "\n")
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admins, viewers := file("admins", "alice", "bob"), file("viewers", "carol")
	for _, c := range []struct {
		name                       string
		admins, viewers, adminUser string
		err                        string
		nAdmins, nViewers          int
	}{
		{"admins and viewers", admins, viewers, "admin", "", 2, 1},
		{"viewers only", "", viewers, "admin", "", 0, 1},
		{"neither", "", "", "admin", "", 0, 0},
		{"a name in both", admins, file("v2", "carol", "bob"), "admin", "bob is both an admin", 0, 0},
		{"a viewer named as the admin", "", file("v3", "root"), "root", "viewer root has the admin's name", 0, 0},
		{"an empty viewers file", admins, file("v4"), "admin", "viewers file " + filepath.Join(dir, "v4") + " names no viewer", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, v, err := dashboardUsers(c.admins, c.viewers, c.adminUser)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil || len(a) != c.nAdmins || len(v) != c.nViewers {
				t.Fatalf("got %d admins, %d viewers, %v; want %d, %d", len(a), len(v), err, c.nAdmins, c.nViewers)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	got, err := trustedProxies([]string{"10.0.0.5", "10.1.2.3/16", "::1"})
	if err != nil || len(got) != 3 || got[0].String() != "10.0.0.5/32" || got[1].String() != "10.1.0.0/16" || got[2].String() != "::1/128" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"nonsense", "10.0.0.0/33", ""} {
		if _, err := trustedProxies([]string{bad}); err == nil || !strings.Contains(err.Error(), "want an address (10.0.0.5) or a CIDR") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
