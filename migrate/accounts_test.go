package migrate

import (
	"strings"
	"testing"
)

func TestReadAccounts(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []AccountRow
		wantErr string
	}{
		{
			name: "header, comments, optional new password",
			in:   "old address,new address,old password,new password\n# comment\nalice@old.example, alice@new.example, pw1\n\nbob@old.example,bob@new.example,\"p,w\",np\n",
			want: []AccountRow{{Line: 3, Old: "alice@old.example", New: "alice@new.example", OldPassword: "pw1"},
				{Line: 5, Old: "bob@old.example", New: "bob@new.example", OldPassword: "p,w", NewPassword: "np"}},
		},
		{name: "too few columns", in: "alice@old.example\n", wantErr: "line 1: want old address"},
		{name: "too many columns", in: "a@x,b@y,p,q,r,s\n", wantErr: "got 6 columns"},
		{name: "own old server", in: "a@x,b@y,p,,mail2.old.example:993\nc@x,d@y,p,q,mail3.old.example\n", want: []AccountRow{
			{Line: 1, Old: "a@x", New: "b@y", OldPassword: "p", Server: "mail2.old.example:993"},
			{Line: 2, Old: "c@x", New: "d@y", OldPassword: "p", NewPassword: "q", Server: "mail3.old.example"}}},
		{name: "old server with a scheme", in: "a@x,b@y,p,,imaps://mail2.old.example\n", wantErr: "line 1: old server \"imaps://mail2.old.example\": want a host name or host:port"},
		{name: "old server bad port", in: "a@x,b@y,p,,mail2.old.example:99999\n", wantErr: "the port must be a number from 1 to 65535"},
		{name: "duplicate", in: "a@x,b@y,p\nA@x,c@y,q\n", wantErr: "line 2: A@x is already listed on line 1"},
		{name: "space in address", in: "a b@x,b@y,secretpw\n", wantErr: "contains a space"},
		{name: "empty", in: "# nothing\n", wantErr: "no accounts"},
		{name: "bad quoting", in: "a@x,\"b@y,secretpw\n", wantErr: "line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadAccounts(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "secretpw") {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d rows, want %d", len(got), len(c.want))
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("row %d: %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func FuzzReadAccounts(f *testing.F) {
	f.Add("a@x,b@y,pw\n")
	f.Add("old,new,pw\n\"a@x\",b@y,\"p\"\"w\",n\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ReadAccounts(strings.NewReader(in))
		if err != nil {
			for _, r := range rows {
				_ = r
			}
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Old == "" || r.New == "" {
				t.Fatalf("empty address accepted: %+v", r)
			}
			k := strings.ToLower(r.Old)
			if seen[k] {
				t.Fatalf("duplicate accepted: %q", r.Old)
			}
			seen[k] = true
		}
	})
}
