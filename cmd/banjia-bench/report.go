package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Targets from the issue (performance: make bench).
const (
	targetLoopback = 0.95
	targetRTT      = 0.85
	targetNoop     = 2 * time.Second
	targetRSSMB    = 150
)

// report is docs/performance.md.
func (b *bench) report(rows []*row, took time.Duration) string {
	c := b.c
	var s strings.Builder
	s.WriteString("# Performance\n\n")
	fmt.Fprintf(&s, "Reproduce with `%s` (the program is `cmd/banjia-bench`; `make bench BENCHFLAGS=-quick` is a\n", c.commandRun)
	s.WriteString("two-minute version with smaller sizes). It starts its own Dovecot instances on loopback, builds the corpus,\n")
	s.WriteString("runs the `banjia` binary as a separate process, and stops every server it started.\n\n")
	s.WriteString("## Figures\n\n")
	fmt.Fprintf(&s, "Measured %s on %d CPUs, %s, %s; whole run %v.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
		runtime.NumCPU(), runtime.Version(), dovecotVersion(), took.Round(time.Second))
	s.WriteString(table(rows))
	s.WriteString("\n")
	s.WriteString(b.targets(rows))
	s.WriteString("\n## What is measured\n\n")
	fmt.Fprintf(&s, "- **Corpus**: %d accounts x %d messages from `internal/mailgen` (deterministic; median %s, 5%% with\n", c.accounts, c.messages, humanBytes(b.median))
	s.WriteString("  200 KB - 5 MB attachments; flags, keywords, dates over ten years, nine folders with Chinese and nested\n")
	s.WriteString("  names), written straight into the source's maildir. Source Dovecot: maildir. Target Dovecot: sdbox,\n")
	s.WriteString("  `mail_fsync = never` unless the row says `mail_fsync=optimized` (Dovecot's default).\n")
	fmt.Fprintf(&s, "- **C** is the number of connections appending to the target: banjia runs with `--parallel %d --conns %d`\n", c.parallel, c.conns)
	fmt.Fprintf(&s, "  (C = %d; each account also holds one control session that creates and selects folders), and the\n", c.parallel*c.conns)
	s.WriteString("  raw limit uses the same C.\n")
	s.WriteString("- **Raw ingest limit**: the whole corpus held in memory and APPENDed over C connections as fast as the\n")
	s.WriteString("  target answers: written on the bare socket (not with banjia's code), LITERAL+ literals (no continuation\n")
	s.WriteString("  round trip), 64 commands in flight per connection. It is the same work as the migration's: each\n")
	s.WriteString("  account's messages go into its own target mailbox and folders, and each of the C connections logs in\n")
	s.WriteString("  to one mailbox after another, as banjia's lanes do. Timed from the first connection to the last answer.\n")
	s.WriteString("- **banjia end to end**: `banjia job start` as a subprocess, timed from exec to exit (logins, listing,\n")
	s.WriteString("  folder creation, copying, the last checkpoint write). Every message is then counted on the target.\n")
	s.WriteString("  Peak RSS is the process's own VmHWM (written at exit through `BANJIA_PEAKRSS_FILE`).\n")
	fmt.Fprintf(&s, "- **%v RTT**: source and target are both reached through a proxy in the benchmark process that holds\n", c.rtt)
	fmt.Fprintf(&s, "  every chunk %v in each direction, keeping order and throughput (`internal/delayproxy`); the raw\n", c.rtt/2)
	s.WriteString("  limit is measured through the same proxy.\n")
	fmt.Fprintf(&s, "- **No-op re-run**: a job of %d messages (20 accounts, no attachments) is copied, the passwords are\n", c.noopTotal)
	s.WriteString("  supplied again (`job add`), and `job start --rerun` is timed. Bodies fetched are counted by the source\n")
	s.WriteString("  server itself: the sum of `body_count` in Dovecot's logout lines for the re-run's sessions.\n")
	fmt.Fprintf(&s, "- **Large message**: 16 accounts copied at once (`--parallel 16 --conns %d`), one holding a %d MB message in\n", c.conns, c.bigMB)
	s.WriteString("  the middle of its INBOX; the row reports banjia's peak RSS.\n")
	if b.cpus != nil {
		s.WriteString("- **CPUs**: " + b.cpus.String() + ". On a small machine the source server and the\n")
		s.WriteString("  copier would otherwise take CPU from the very server whose limit is measured; pinning models separate\n")
		s.WriteString("  machines, which is what the ratio is about (`-pin=false` turns it off).\n")
	}
	fmt.Fprintf(&s, "- **The rule, fixed before the run**: each comparison row is one warm-up pair (not counted) and then %d\n", c.repeat)
	s.WriteString("  pairs of one raw run and one banjia run, into fresh target users, after `sync`. Within each pair a coin\n")
	fmt.Fprintf(&s, "  toss decides which goes first (seed %d; `-seed` replays the order). The verdict is the **median of\n", c.seed)
	s.WriteString("  the pair ratios** (banjia's rate over the raw rate of the same pair); the spread is the lowest and\n")
	s.WriteString("  highest pair ratio. The table's rows are the runs with the median rate on each side, and the notes give\n")
	s.WriteString("  every sample in order. Each run's mail is counted and then removed from the target, so every run starts\n")
	s.WriteString("  from the same target (left in place, the target's CPU per message drifted by a third over 8 identical\n")
	s.WriteString("  runs).\n")
	s.WriteString("- **Target CPU per message**: the user + system CPU time of the target Dovecot's processes (its master,\n")
	s.WriteString("  the children it reaped and those still running, from `/proc`) during the run, over the messages copied;\n")
	s.WriteString("  the median over the counted runs of each side. Both sides are bound by the target's CPU, so this is what\n")
	s.WriteString("  banjia costs the server beyond the APPENDs themselves.\n")
	s.WriteString("- **Settings**: `banjia` runs as shipped: no flag beyond `--parallel` and `--conns`, which keep their\n")
	s.WriteString("  defaults (4 and 2).\n")
	s.WriteString("\n## Why it is fast\n\n")
	s.WriteString("- **Pipelined APPEND** (`sinks/imapsink/pipeline.go`, `wire.go`): go-imap sends every literal over 4 KiB as a\n")
	s.WriteString("  synchronising literal, waiting for the server's `+` even when it offers LITERAL+, and the sink used to wait\n")
	s.WriteString("  for each tagged answer too: two round trips per message. With LITERAL+ the sink writes APPEND itself with\n")
	s.WriteString("  `{n+}` literals and keeps up to 64 commands / 4 MiB in flight per connection; a thin layer under go-imap\n")
	s.WriteString("  takes the tagged answers to those commands out of the stream (APPENDUID is recorded from them) and passes\n")
	s.WriteString("  everything else on, so go-imap keeps doing LIST, CREATE, SELECT and FETCH on the same session. A refusal\n")
	s.WriteString("  fails only its message; a connection lost before the answers came reports the messages sent as in doubt.\n")
	s.WriteString("  `sinks/imapsink` tests show 100 APPENDs at 20 ms RTT finishing in under a tenth of a second.\n")
	s.WriteString("- **One lane per target folder** (`migrate/queue.go`): two sessions saving into one mailbox make Dovecot\n")
	s.WriteString("  take the index lock in turn and read the other's changes before each save (2 more read calls per message\n")
	s.WriteString("  measured); lanes keep to folders of their own while there is one and share only the last.\n")
	s.WriteString("- **Prefetch** (`sources.Prefetcher`): a lane asks the source for its next batch while the target is still\n")
	s.WriteString("  answering for the current one; EXAMINE and UID FETCH travel together.\n")
	s.WriteString("- **Fewer round trips around the copy**: CREATE of a folder and its parents plus SELECT in one round trip;\n")
	s.WriteString("  lanes log in as soon as the account has work, source and target at once; a folder whose UIDNEXT and\n")
	s.WriteString("  message count are unchanged is skipped without listing (what makes the no-op re-run cheap).\n")
	s.WriteString("- **No idle target between accounts**: an account whose batches are all with its lanes makes room for\n")
	s.WriteString("  the next, which logs in and lists while those lanes finish; lanes of all accounts together stay within\n")
	s.WriteString("  `--parallel` x `--conns` connections.\n")
	s.WriteString("- **Flat memory**: bodies are streamed from the source's FETCH literal into the APPEND literal through a\n")
	s.WriteString("  64 KiB buffer; nothing holds a whole message.\n")
	return s.String()
}

func (b *bench) targets(rows []*row) string {
	var s strings.Builder
	s.WriteString("Against the issue's targets:\n\n")
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	for _, r := range rows {
		switch r.kind {
		case "loopback":
			v := medianOf(r.pairs)
			fmt.Fprintf(&s, "- loopback, banjia vs. raw limit: median pair ratio %.2fx%s (target >= %.2fx): %s\n", v, spread(r), targetLoopback, mark(v >= targetLoopback))
		case "rtt":
			v := medianOf(r.pairs)
			fmt.Fprintf(&s, "- %v RTT, banjia vs. raw limit at that delay: median pair ratio %.2fx%s (target >= %.2fx): %s\n", b.c.rtt, v, spread(r), targetRTT, mark(v >= targetRTT))
		case "noop":
			fmt.Fprintf(&s, "- no-op re-run of %d messages: %.2f s, %d bodies fetched (target <= 2 s and 0): %s\n", b.c.noopTotal,
				r.elapsed.Seconds(), r.fetched, mark(r.elapsed <= targetNoop && r.fetched == 0))
		case "big":
			fmt.Fprintf(&s, "- peak RSS with a %d MB message among 16 accounts: %d MB (target <= %d MB): %s\n", b.c.bigMB, r.rssKB/1024,
				targetRSSMB, mark(r.rssKB/1024 <= targetRSSMB))
		}
	}
	return s.String()
}

// medianOf is the middle pair ratio (the mean of the middle two of an even
// count).
func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	p := append([]float64(nil), xs...)
	sort.Float64s(p)
	if len(p)%2 == 0 {
		return (p[len(p)/2-1] + p[len(p)/2]) / 2
	}
	return p[len(p)/2]
}

// spread gives the pairs' range and both sides' target CPU per message.
func spread(r *row) string {
	lo, hi := r.pairs[0], r.pairs[0]
	for _, x := range r.pairs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return fmt.Sprintf(" over %d pairs, spread %.2f-%.2fx; target CPU %.3f ms/msg under banjia, %.3f under the raw client (%+.0f%%)",
		len(r.pairs), lo, hi, r.cpuPerMsg(), r.limit.cpuPerMsg(), 100*(r.cpuPerMsg()/r.limit.cpuPerMsg()-1))
}

func table(rows []*row) string {
	var s strings.Builder
	s.WriteString("| run | C | messages | MB | time | msg/s | MB/s | vs. raw limit (median pair) | target CPU/msg | banjia peak RSS | notes |\n")
	s.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ratio, rss, rate, mbps, cpu := "", "", "", "", ""
		if r.limit != nil {
			ratio = fmt.Sprintf("%.2fx", medianOf(r.pairs))
		}
		if r.cpu > 0 {
			cpu = fmt.Sprintf("%.3f ms", r.cpuPerMsg())
		}
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%d MB", r.rssKB/1024)
		}
		if r.messages > 0 {
			rate = fmt.Sprintf("%.0f", r.rate())
			mbps = fmt.Sprintf("%.1f", r.mbps())
		}
		fmt.Fprintf(&s, "| %s | %d | %d | %.0f | %.2f s | %s | %s | %s | %s | %s | %s |\n", r.what, r.c, r.messages,
			float64(r.bytes)/1e6, r.elapsed.Seconds(), rate, mbps, ratio, cpu, rss, r.note)
	}
	return s.String()
}

func dovecotVersion() string {
	out, err := exec.Command("/usr/sbin/dovecot", "--version").Output()
	if err != nil {
		return "Dovecot (version unknown)"
	}
	return "Dovecot " + strings.Fields(string(out))[0]
}

func humanBytes(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1024)
}
