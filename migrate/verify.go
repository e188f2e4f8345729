package migrate

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/mail/fault"
	"github.com/banjia-mail/banjia/sinks"
	"github.com/banjia-mail/banjia/sources"
	"github.com/banjia-mail/banjia/state"
)

// FolderCheck is what `banjia job verify` found for one source folder.
type FolderCheck struct {
	Account string `json:"account"`
	Folder  string `json:"folder"`
	Target  string `json:"target"`
	// SourceMessages are the folder's messages in scope (not skipped by the
	// job's options); TargetMessages the target folder's (with any mail
	// that did not come from this folder).
	SourceMessages int `json:"source_messages"`
	TargetMessages int `json:"target_messages"`
	// Missing are messages of the source that the target does not hold;
	// Extra are copies beyond the source's (duplicates). Deep checks name
	// them by digest; a quick check counts only, so it can say that some
	// are missing, never that nothing is when other mail shares the folder.
	Missing int    `json:"missing"`
	Extra   int    `json:"extra,omitempty"`
	Deep    bool   `json:"deep"`
	Error   string `json:"error,omitempty"`
	// MissingUIDs are source UIDs not on the target (deep checks).
	MissingUIDs []uint32 `json:"missing_uids,omitempty"`
}

// OK reports whether the target holds every message of the folder once.
func (c FolderCheck) OK() bool { return c.Error == "" && c.Missing == 0 && c.Extra == 0 }

// Verify compares, account by account and folder by folder, the source with
// the target as they are now. A quick check compares counts (one listing of
// each side); a deep one compares every message by a digest of its bytes
// (line ends ignored, as servers rewrite them), so it names what is missing
// or copied twice. Nothing is changed on either side. accounts limits it to
// those accounts (nil: all that have started).
func (r *Runner) Verify(ctx context.Context, jobID string, accounts []string, deep bool) ([]FolderCheck, error) {
	job, err := r.store.Job(jobID)
	if err != nil {
		return nil, err
	}
	accts, err := r.store.Accounts(jobID)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, a := range accounts {
		want[a] = true
	}
	seen := map[string]bool{}
	var out []FolderCheck
	for _, a := range accts {
		if len(want) > 0 && !want[a.ID] {
			continue
		}
		seen[a.ID] = true
		if len(accounts) == 0 && (a.State == state.AccountNotStarted || a.State == state.AccountAbandoned) {
			continue
		}
		checks, err := r.verifyAccount(ctx, job, a, deep)
		if err != nil {
			out = append(out, FolderCheck{Account: a.ID, Error: fault.Reason(err)})
			continue
		}
		out = append(out, checks...)
	}
	for a := range want {
		if !seen[a] {
			return nil, fmt.Errorf("job %s has no account %s", jobID, a)
		}
	}
	return out, nil
}

func (r *Runner) verifyAccount(ctx context.Context, job *state.Job, a *state.Account, deep bool) ([]FolderCheck, error) {
	ar := &accountRun{r: r, job: job, acct: a}
	srcEP, dstEP, err := ar.endpoints()
	if err != nil {
		return nil, err
	}
	cps, err := r.store.Checkpoints(job.ID, a.ID)
	if err != nil {
		return nil, err
	}
	src, err := r.cfg.OpenSource(ctx, srcEP)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	dst, err := r.cfg.OpenSink(ctx, dstEP)
	if err != nil {
		return nil, err
	}
	defer dst.Close()
	fm, err := mapFolders(ctx, src, dst, job.Options.Renames)
	if err != nil {
		return nil, err
	}
	folders, names, onTarget := fm.folders, fm.names, fm.onTarget
	// Source folders that land in one target folder are checked together.
	type group struct {
		checks []*FolderCheck
		msgs   [][]mail.Message
		f      []mail.Folder
	}
	groups := map[string]*group{}
	var order []string
	for _, f := range folders {
		if ar.skipFolder(f) {
			continue
		}
		target := names[f.Name]
		cp := cps[f.Name]
		if cp != nil && cp.Wanted != "" && cp.Wanted == target && cp.Target != "" {
			target = cp.Target
		}
		msgs, err := src.Messages(ctx, f)
		if err != nil {
			return nil, err
		}
		var inScope []mail.Message
		for _, m := range msgs {
			if cp != nil && m.UID != 0 && cp.Skipped.Contains(m.UID) {
				continue
			}
			if !job.Options.Since.IsZero() && !m.Date.IsZero() && m.Date.Before(job.Options.Since) {
				continue
			}
			if job.Options.MaxMessageSize > 0 && m.Size > job.Options.MaxMessageSize {
				continue
			}
			inScope = append(inScope, m)
		}
		g := groups[target]
		if g == nil {
			g = &group{}
			groups[target] = g
			order = append(order, target)
		}
		g.checks = append(g.checks, &FolderCheck{Account: a.ID, Folder: f.Name, Target: target, SourceMessages: len(inScope), Deep: deep})
		g.msgs = append(g.msgs, inScope)
		g.f = append(g.f, f)
	}
	sort.Strings(order)
	var out []FolderCheck
	for _, target := range order {
		g := groups[target]
		st, exists := onTarget[target]
		total := 0
		for _, m := range g.msgs {
			total += len(m)
		}
		switch {
		case !exists:
			for _, c := range g.checks {
				c.Missing, c.Error = c.SourceMessages, "the target folder does not exist"
				if c.SourceMessages == 0 {
					c.Error = "the (empty) target folder does not exist"
				}
			}
		case !deep:
			short := total - int(st.Messages)
			for _, c := range g.checks {
				c.TargetMessages = int(st.Messages)
				if short > 0 {
					// Which folder's mail is short cannot be told from counts.
					c.Missing = min(short, c.SourceMessages)
					short -= c.Missing
				}
			}
		default:
			if err := verifyDeep(ctx, src, dst, target, g.f, g.msgs, g.checks); err != nil {
				return nil, err
			}
		}
		for _, c := range g.checks {
			out = append(out, *c)
		}
	}
	return out, nil
}

// verifyDeep matches source and target messages by digest, one to one.
func verifyDeep(ctx context.Context, src sources.Source, dst sinks.Sink, target string, fs []mail.Folder,
	msgs [][]mail.Message, checks []*FolderCheck) error {
	tmsgs, err := dst.Messages(ctx, target, 1)
	if err != nil {
		return err
	}
	uids := make([]uint32, 0, len(tmsgs))
	for _, m := range tmsgs {
		uids = append(uids, m.UID)
	}
	have := map[string]int{}
	err = dst.Fetch(ctx, target, uids, func(_ uint32, r io.Reader) error {
		d, err := digest(r)
		if err == nil {
			have[d]++
		}
		return err
	})
	if err != nil {
		return err
	}
	wanted := map[string]int{}
	for i, f := range fs {
		c := checks[i]
		c.TargetMessages = len(tmsgs)
		if len(msgs[i]) == 0 {
			continue
		}
		err := src.Fetch(ctx, f, msgs[i], func(b *mail.Body) error {
			d, err := digestN(b.Reader, b.Size)
			if err != nil {
				return err
			}
			wanted[d]++
			if have[d] > 0 {
				have[d]--
			} else {
				c.Missing++
				c.MissingUIDs = append(c.MissingUIDs, b.UID)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// What is left on the target with a digest the source has is a copy too many.
	for d, n := range have {
		if wanted[d] > 0 && n > 0 {
			checks[0].Extra += n
		}
	}
	return nil
}

// VerifyLine says one check in a line.
func VerifyLine(c FolderCheck) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q -> %q: source %d, target %d", c.Account, c.Folder, c.Target, c.SourceMessages, c.TargetMessages)
	if c.Missing > 0 {
		fmt.Fprintf(&b, ", %d missing", c.Missing)
	}
	if c.Extra > 0 {
		fmt.Fprintf(&b, ", %d copied twice", c.Extra)
	}
	if c.Error != "" {
		fmt.Fprintf(&b, " (%s)", c.Error)
	}
	return b.String()
}
