package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/banjia-mail/banjia/migrate"
)

// TestCreateBounds: the bounds every door gets from Manager.Create (the
// CLI's flags, the dashboard's form and the API's JSON are read into the
// same request): each bad value is refused with what is wanted and leaves
// no job; the bounds themselves are taken.
func TestCreateBounds(t *testing.T) {
	m := migrate.NewIdleManager(tempStore(t), migrate.Config{})
	for _, c := range []struct {
		name string
		edit func(*migrate.JobRequest)
		want string // "" for taken
	}{
		{"enroll days past the bound", func(r *migrate.JobRequest) { r.EnrollDays = 99999999 }, "enrollment window 99999999 days: want 0 (only the accounts given now) up to 3650"},
		{"enroll days negative", func(r *migrate.JobRequest) { r.EnrollDays = -1 }, "enrollment window -1 days"},
		{"enroll days at the bound", func(r *migrate.JobRequest) { r.EnrollDays = migrate.MaxEnrollDays }, ""},
		{"enroll days none", func(r *migrate.JobRequest) { r.EnrollDays = 0 }, ""},
		{"size past the bound", func(r *migrate.JobRequest) { r.Options.MaxMessageSize = migrate.MessageSizeBytes(1 << 40) }, "largest message: more than 10240 MB"},
		{"size negative", func(r *migrate.JobRequest) { r.Options.MaxMessageSize = migrate.MessageSizeBytes(-3) }, "largest message -3 MB"},
		{"size at the bound", func(r *migrate.JobRequest) {
			r.Options.MaxMessageSize = migrate.MessageSizeBytes(migrate.MaxMessageSizeMB)
		}, ""},
		{"domain markup", func(r *migrate.JobRequest) { r.Domain = "<script>x</script>" }, "old domain"},
		{"domain trailing dot", func(r *migrate.JobRequest) { r.Domain = "old.test." }, "old domain"},
		{"domain hyphen first", func(r *migrate.JobRequest) { r.NewDomain = "-new.test" }, "new domain"},
		{"domain too long", func(r *migrate.JobRequest) { r.NewDomain = strings.Repeat("a", 64) + ".test" }, "new domain"},
		{"new domain with at sign", func(r *migrate.JobRequest) { r.NewDomain = "@new.test" }, ""},
		{"domain in Chinese", func(r *migrate.JobRequest) { r.Domain = "旧公司.中国" }, ""},
	} {
		id := strings.ReplaceAll(c.name, " ", "-")
		req := memberRequest(id)
		c.edit(&req)
		_, _, err := m.Create(context.Background(), req, "test")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want it taken", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		case c.want != "":
			if _, err := m.Store().Job(id); err == nil {
				t.Errorf("%s: the refused job stayed behind", c.name)
			}
		}
	}
	if got := migrate.MessageSizeBytes(1 << 62); got <= 0 {
		t.Fatalf("a huge size overflowed to %d", got)
	}
}
