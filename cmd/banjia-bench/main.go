// Command banjia-bench is `make bench`: it starts a source and a target
// Dovecot on loopback, fills the source with a deterministic corpus, and
// measures side by side the target's raw ingest limit and banjia copying the
// same mail end to end (on loopback and through a 20 ms round-trip proxy),
// a no-op re-run of a finished 100,000-message job, and peak memory with a
// 50 MB message among 16 accounts in flight. It prints a markdown table and
// writes docs/performance.md.
package main

import (
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/banjia-mail/banjia/internal/delayproxy"
	"github.com/banjia-mail/banjia/internal/dovecot"
	"github.com/banjia-mail/banjia/internal/mailgen"
)

type config struct {
	banjia     string
	out        string
	quick      bool
	accounts   int
	messages   int
	parallel   int
	conns      int
	noopTotal  int
	bigMB      int
	rtt        time.Duration
	only       string
	fsyncToo   bool
	repeat     int
	seed       uint64
	pin        bool
	commandRun string
}

func main() {
	var c config
	flag.StringVar(&c.banjia, "banjia", "bin/banjia", "the banjia binary to measure (built by make bench)")
	flag.StringVar(&c.out, "out", "docs/performance.md", "where to write the report (empty: do not write)")
	flag.BoolVar(&c.quick, "quick", false, "a smaller run (about 2 minutes): fewer messages, 10,000-message no-op, 20 MB message")
	flag.IntVar(&c.accounts, "accounts", 20, "accounts in the throughput corpus")
	flag.IntVar(&c.messages, "messages", 500, "messages per account in the throughput corpus")
	flag.IntVar(&c.parallel, "parallel", 4, "accounts banjia copies at once")
	flag.IntVar(&c.conns, "conns", 2, "connections per account; C = parallel x conns for banjia and the raw limit")
	flag.IntVar(&c.noopTotal, "noop", 100000, "messages in the job re-run as a no-op")
	flag.IntVar(&c.bigMB, "big", 50, "size in MB of the one large message among 16 accounts")
	flag.DurationVar(&c.rtt, "rtt", 20*time.Millisecond, "round trip added by the delaying proxy")
	flag.StringVar(&c.only, "only", "", "run only these parts, comma-separated: loopback,rtt,noop,big,fsync")
	flag.BoolVar(&c.fsyncToo, "fsync", true, "also measure loopback with Dovecot's default mail_fsync")
	flag.BoolVar(&c.pin, "pin", true, "give the target Dovecot half the CPUs to itself (see docs/performance.md)")
	flag.StringVar(&c.commandRun, "reproduce", "", "the command to print as the way to reproduce the report (make bench sets it)")
	flag.IntVar(&c.repeat, "repeat", 5, "raw/banjia pairs per row after a warm-up pair, each pair in random order; the verdict is the median pair ratio")
	flag.Uint64Var(&c.seed, "seed", 0, "seed of the pairs' order (0: from the clock; the report gives the one used)")
	flag.Parse()
	if c.quick {
		setIfDefault("accounts", &c.accounts, 8)
		setIfDefault("messages", &c.messages, 200)
		setIfDefault("noop", &c.noopTotal, 10000)
		setIfDefault("big", &c.bigMB, 20)
		c.fsyncToo = false
		setIfDefault("repeat", &c.repeat, 3)
		// Quick figures are not the sizes: do not overwrite the report.
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "out" })
		if !set {
			c.out = ""
		}
	}
	if c.commandRun == "" {
		c.commandRun = "go run ./cmd/banjia-bench " + strings.Join(os.Args[1:], " ")
	}
	if err := run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "banjia-bench:", err)
		os.Exit(1)
	}
}

func setIfDefault(name string, v *int, quick int) {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	if !set {
		*v = quick
	}
}

func (c *config) wants(part string) bool {
	if c.only == "" {
		return part != "fsync" || c.fsyncToo
	}
	for _, p := range strings.Split(c.only, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// benchUser is one account: Old on the source, New on the target.
type benchUser struct{ Old, New, OldPW, NewPW string }

// row is one line of the report.
type row struct {
	what     string
	c        int
	messages int
	bytes    int64
	elapsed  time.Duration
	limit    *row // the raw limit this row is compared with
	rssKB    int64
	note     string
	kind     string        // loopback, rtt, noop or big: the rows the issue sets targets for
	fetched  int           // bodies fetched (no-op re-run)
	pairs    []float64     // each pair's banjia rate over its raw rate (the verdict is their median)
	cpu      time.Duration // the target's CPU time (user + system) during the run
	samples  []string      // every run's rate, in the order run
}

// cpuPerMsg is the target's CPU time per message copied, in ms.
func (r *row) cpuPerMsg() float64 {
	if r.messages == 0 {
		return 0
	}
	return float64(r.cpu) / float64(time.Millisecond) / float64(r.messages)
}

func (r *row) rate() float64 { return float64(r.messages) / r.elapsed.Seconds() }
func (r *row) mbps() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

func run(c *config) error {
	if err := dovecot.Available(); err != nil {
		return err
	}
	if _, err := os.Stat(c.banjia); err != nil {
		return fmt.Errorf("%s: %v (make bench builds it)", c.banjia, err)
	}
	bin, err := filepath.Abs(c.banjia)
	if err != nil {
		return err
	}
	c.banjia = bin
	work, err := os.MkdirTemp("", "banjia-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	b := &bench{c: c, work: work, cpus: planCPUs(c.pin), rng: rand.New(rand.NewPCG(c.seed, 1))}
	logf("pair order seed %d (-seed to replay)", c.seed)
	defer b.stop()
	if err := b.cpus.pinSelf(); err != nil {
		return fmt.Errorf("pin the benchmark's CPUs: %w", err)
	}
	var rows []*row
	start := time.Now()
	C := c.parallel * c.conns
	needCorpus := c.wants("loopback") || c.wants("rtt") || c.wants("fsync")
	if needCorpus {
		logf("starting Dovecot source (maildir) and target (sdbox, mail_fsync=never)")
		if b.src, err = b.server(dovecot.Options{MaxUserIPConnections: 500}); err != nil {
			return err
		}
		if b.dst, err = b.target(dovecot.Options{Format: "sdbox", MaxUserIPConnections: 500}); err != nil {
			return err
		}
		if err := b.corpus(); err != nil {
			return err
		}
	}
	if c.wants("loopback") {
		rs, err := b.compare("loopback", b.dst, b.src.IMAPAddr, b.dst.IMAPAddr, C)
		if err != nil {
			return err
		}
		rs[1].kind = "loopback"
		rows = append(rows, rs...)
	}
	if c.wants("rtt") {
		sp, err := delayproxy.Start(b.src.IMAPAddr, c.rtt/2)
		if err != nil {
			return err
		}
		dp, err := delayproxy.Start(b.dst.IMAPAddr, c.rtt/2)
		if err != nil {
			sp.Close()
			return err
		}
		rs, err := b.compare(c.rtt.String()+" RTT", b.dst, sp.Addr, dp.Addr, C)
		sp.Close()
		dp.Close()
		if err != nil {
			return err
		}
		rs[1].kind = "rtt"
		rows = append(rows, rs...)
	}
	if c.wants("fsync") {
		logf("starting a target with Dovecot's default mail_fsync")
		fs, err := b.target(dovecot.Options{Format: "sdbox", Fsync: true, MaxUserIPConnections: 500})
		if err != nil {
			return err
		}
		rs, err := b.compare("loopback, mail_fsync=optimized", fs, b.src.IMAPAddr, fs.IMAPAddr, C)
		if err != nil {
			return err
		}
		rows = append(rows, rs...)
	}
	if needCorpus {
		b.msgs = nil
		runtime.GC()
	}
	if c.wants("noop") {
		rs, err := b.noop()
		if err != nil {
			return err
		}
		rows = append(rows, rs...)
	}
	if c.wants("big") {
		r, err := b.big()
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	report := b.report(rows, time.Since(start))
	fmt.Println(report)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(report), 0o644); err != nil {
			return err
		}
		logf("wrote %s", c.out)
	}
	return nil
}

type bench struct {
	c       *config
	work    string
	servers []*dovecot.Server
	src     *dovecot.Server
	dst     *dovecot.Server
	users   []benchUser
	folders []string
	msgs    []rawMessage
	bytes   int64
	sizes   []int
	median  int
	runs    int
	cpus    *cpuPlan
	rng     *rand.Rand
}

// server starts a source instance, on the feeders' CPUs.
func (b *bench) server(o dovecot.Options) (*dovecot.Server, error) {
	return b.start(o, false)
}

// target starts a target instance, on CPUs of its own.
func (b *bench) target(o dovecot.Options) (*dovecot.Server, error) {
	return b.start(o, true)
}

func (b *bench) start(o dovecot.Options, target bool) (*dovecot.Server, error) {
	s, err := dovecot.Start(o)
	if err != nil {
		return nil, err
	}
	b.servers = append(b.servers, s)
	if err := b.cpus.pinServer(s, target); err != nil {
		return nil, fmt.Errorf("pin Dovecot: %w", err)
	}
	return s, nil
}

func (b *bench) stop() {
	for _, s := range b.servers {
		if err := s.Stop(); err != nil {
			logf("stop dovecot: %v", err)
		}
	}
}

// corpus fills the source with accounts x messages of mailgen mail (5% with
// 200 KB - 5 MB attachments) and keeps the bodies for the raw runs.
func (b *bench) corpus() error {
	c := b.c
	logf("generating and delivering %d accounts x %d messages", c.accounts, c.messages)
	b.folders = mailgen.DefaultFolders
	index := map[string]int{}
	for i, f := range b.folders {
		index[f] = i
	}
	for i := 0; i < c.accounts; i++ {
		u := benchUser{Old: fmt.Sprintf("u%02d@old.test", i), New: fmt.Sprintf("u%02d@new.test", i),
			OldPW: fmt.Sprintf("old-%d", i), NewPW: fmt.Sprintf("new-%d", i)}
		if err := b.src.AddUser(u.Old, u.OldPW); err != nil {
			return err
		}
		msgs := mailgen.Mailbox(u.Old, mailgen.Options{Seed: int64(i + 1), Messages: c.messages, MaxAttachment: 5 << 20})
		for _, m := range msgs {
			b.msgs = append(b.msgs, rawMessage{user: i, folder: index[m.Folder], body: m.Body, flags: m.Flags, date: m.Date})
			b.bytes += int64(len(m.Body))
			b.sizes = append(b.sizes, len(m.Body))
		}
		if err := deliver(b.src, u.Old, msgs); err != nil {
			return err
		}
		b.users = append(b.users, u)
	}
	b.median = median(b.sizes)
	logf("corpus: %d messages, %.0f MB, median %d bytes", len(b.msgs), float64(b.bytes)/1e6, b.median)
	return nil
}

func deliver(s *dovecot.Server, user string, msgs []mailgen.Message) error {
	byFolder := map[string][]dovecot.Message{}
	var order []string
	for _, m := range msgs {
		if _, ok := byFolder[m.Folder]; !ok {
			order = append(order, m.Folder)
		}
		byFolder[m.Folder] = append(byFolder[m.Folder], dovecot.Message{Body: m.Body, Flags: m.Flags, Date: m.Date})
	}
	for _, f := range order {
		if err := s.Deliver(user, f, byFolder[f]); err != nil {
			return err
		}
	}
	return nil
}

// populate creates accounts PREFIXnn on both servers and delivers to each
// source mailbox what gen makes for it.
func populate(src, dst *dovecot.Server, prefix string, accounts int, gen func(i int, u benchUser) []mailgen.Message) (users []benchUser, total int, bytes int64, err error) {
	for i := 0; i < accounts; i++ {
		u := benchUser{Old: fmt.Sprintf("%s%02d@old.test", prefix, i), New: fmt.Sprintf("%s%02d@new.test", prefix, i),
			OldPW: fmt.Sprintf("old-%d", i), NewPW: fmt.Sprintf("new-%d", i)}
		if err := src.AddUser(u.Old, u.OldPW); err != nil {
			return nil, 0, 0, err
		}
		if err := dst.AddUser(u.New, u.NewPW); err != nil {
			return nil, 0, 0, err
		}
		msgs := gen(i, u)
		for _, m := range msgs {
			bytes += int64(len(m.Body))
		}
		total += len(msgs)
		if err := deliver(src, u.Old, msgs); err != nil {
			return nil, 0, 0, err
		}
		users = append(users, u)
	}
	return users, total, bytes, nil
}

func median(xs []int) int {
	if len(xs) == 0 {
		return 0
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	return s[len(s)/2]
}

// compare measures the raw limit and banjia over the same corpus: a
// warm-up pair that is not counted, then repeat pairs, each in random order
// (which of the two goes first is a coin toss from the seed), into fresh
// target users. The verdict is the median of the pairs' ratios, a rule
// fixed before the run: a best-of-N on each side lets one lucky or unlucky
// sample decide. The rows reported are the runs with the median rate on
// each side; every sample is in the notes.
func (b *bench) compare(where string, srv *dovecot.Server, srcAddr, dstAddr string, C int) ([]*row, error) {
	// Every target user of every run up front: Dovecot re-reads its
	// passwd-file when the file's mtime changes, so two changes within one
	// second could leave the second unseen.
	first := b.runs + 1
	for i := 0; i <= b.c.repeat; i++ {
		for _, u := range b.rawUsers(fmt.Sprintf("r%d", first+i)) {
			if err := srv.AddUser(u.New, u.NewPW); err != nil {
				return nil, err
			}
		}
		for _, u := range b.e2eUsers(fmt.Sprintf("t%d", first+i)) {
			if err := srv.AddUser(u.New, u.NewPW); err != nil {
				return nil, err
			}
		}
	}
	time.Sleep(1100 * time.Millisecond)
	var raws, e2es []*row
	var ratios []float64
	var rawNotes, e2eNotes, order []string
	for i := 0; i <= b.c.repeat; i++ {
		b.runs++
		warm := i == 0
		label := where
		if warm {
			label += " (warm-up, not counted)"
		}
		var raw, e2e *row
		runRaw := func() (err error) {
			raw, err = b.raw("raw ingest limit, "+label, srv, dstAddr, fmt.Sprintf("r%d", b.runs), C)
			return err
		}
		runE2E := func() (err error) {
			e2e, err = b.banjiaRun("banjia end to end, "+label, srv, srcAddr, dstAddr, fmt.Sprintf("t%d", b.runs))
			return err
		}
		rawFirst := b.rng.IntN(2) == 0
		steps := []func() error{runRaw, runE2E}
		if !rawFirst {
			steps = []func() error{runE2E, runRaw}
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
		if warm {
			continue
		}
		ratio := e2e.rate() / raw.rate()
		logf("  pair %d (%s first): %.2fx", i, map[bool]string{true: "raw", false: "banjia"}[rawFirst], ratio)
		raws, e2es, ratios = append(raws, raw), append(e2es, e2e), append(ratios, ratio)
		rawNotes = append(rawNotes, fmt.Sprintf("%.0f", raw.rate()))
		e2eNotes = append(e2eNotes, fmt.Sprintf("%.0f", e2e.rate()))
		order = append(order, map[bool]string{true: "r", false: "b"}[rawFirst])
	}
	raw, e2e := medianRow(raws), medianRow(e2es)
	e2e.limit = raw
	e2e.pairs = ratios
	raw.cpu, e2e.cpu = medianCPU(raws), medianCPU(e2es)
	raw.note = fmt.Sprintf("median of %s msg/s", strings.Join(rawNotes, ", "))
	e2e.note = fmt.Sprintf("median of %s msg/s; pair ratios %s (first of each pair: %s)", strings.Join(e2eNotes, ", "),
		joinRatios(ratios), strings.Join(order, ""))
	if strings.Contains(where, "RTT") {
		e2e.note += "; source and target both behind the delay"
	}
	return []*row{raw, e2e}, nil
}

// medianRow is the run with the median rate (the lower middle one of an
// even count).
func medianRow(rs []*row) *row {
	s := append([]*row(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].rate() < s[j].rate() })
	r := *s[(len(s)-1)/2]
	return &r
}

// medianCPU is the median target CPU time of the runs.
func medianCPU(rs []*row) time.Duration {
	var d []time.Duration
	for _, r := range rs {
		d = append(d, r.cpu)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[(len(d)-1)/2]
}

func joinRatios(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, ", ")
}

// settle writes back what earlier runs left in the page cache, so a run
// does not pay for the one before it.
func settle() {
	syscall.Sync()
	time.Sleep(200 * time.Millisecond)
}

// forget removes what a run wrote into the target, once it is counted, so
// every run starts from the same target. Left in place, each run adds 1.5 GB
// to the target's files and page cache, and the target's CPU per message
// drifted with it: over 8 identical raw runs on the benchmark's VM, from
// 1.06 to 0.77 ms (889 to 1255 msg/s), so which run of a pair came later
// decided its ratio. With each run's mail removed, 8 runs gave 1195 to
// 1448 msg/s.
func forget(srv *dovecot.Server, users []benchUser) {
	for _, u := range users {
		os.RemoveAll(filepath.Join(srv.Dir, "mail", u.New))
	}
}

// rawUsers are the target mailboxes of one raw run: one per corpus account.
func (b *bench) rawUsers(tag string) []benchUser {
	var users []benchUser
	for _, u := range b.users {
		u.New = strings.Replace(u.New, "@", "."+tag+"@", 1)
		users = append(users, u)
	}
	return users
}

func (b *bench) e2eUsers(tag string) []benchUser {
	var users []benchUser
	for _, u := range b.users {
		u.New = strings.Replace(u.New, "@", "."+tag+"@", 1)
		users = append(users, u)
	}
	return users
}

// raw measures the raw ingest limit over C connections into fresh users.
func (b *bench) raw(what string, srv *dovecot.Server, addr, tag string, C int) (*row, error) {
	users := b.rawUsers(tag)
	logf("%s: %d messages into %d mailboxes over %d connections", what, len(b.msgs), len(users), C)
	settle()
	u0 := dovecotUsage(srv)
	elapsed, err := rawIngest(addr, users, len(b.folders), b.msgs, C)
	du := dovecotUsage(srv).sub(u0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r := &row{what: strings.TrimSuffix(what, " (warm-up, not counted)"), c: C, messages: len(b.msgs), bytes: b.bytes, elapsed: elapsed, cpu: du.cpu}
	logf("  %.0f msg/s, %.1f MB/s, target Dovecot CPU %v, %.1f reads/msg", r.rate(), r.mbps(), du.cpu.Round(10*time.Millisecond), float64(du.reads)/float64(len(b.msgs)))
	if n, err := countAll(addr, users); err != nil || n != len(b.msgs) {
		return nil, fmt.Errorf("%s: target holds %d messages of %d (%v)", what, n, len(b.msgs), err)
	}
	forget(srv, users)
	return r, nil
}

// banjiaRun copies the corpus with the banjia binary into target users
// tagged tag, timing `job start` from exec to exit.
func (b *bench) banjiaRun(what string, srv *dovecot.Server, srcAddr, dstAddr, tag string) (*row, error) {
	dir := filepath.Join(b.work, tag)
	os.MkdirAll(dir, 0o700)
	users := b.e2eUsers(tag)
	j := &job{bin: b.c.banjia, dir: dir, users: users}
	if err := j.create(srcAddr, dstAddr); err != nil {
		return nil, err
	}
	logf("%s: --parallel %d --conns %d", what, b.c.parallel, b.c.conns)
	settle()
	var u0 []usage
	for _, s := range b.servers {
		u0 = append(u0, dovecotUsage(s))
	}
	res, err := j.start(b.c.parallel, b.c.conns, false)
	var cpus []string
	for i, s := range b.servers {
		if d := dovecotUsage(s).sub(u0[i]); d.cpu > 50*time.Millisecond {
			cpus = append(cpus, fmt.Sprintf("dovecot#%d %v %.1f reads/msg", i, d.cpu.Round(10*time.Millisecond), float64(d.reads)/float64(len(b.msgs))))
		}
	}
	logf("  Dovecot CPU: %s", strings.Join(cpus, ", "))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	r := &row{what: strings.TrimSuffix(what, " (warm-up, not counted)"), c: b.c.parallel * b.c.conns, messages: len(b.msgs), bytes: b.bytes, elapsed: res.elapsed, rssKB: res.rssKB}
	for i, s := range b.servers {
		if s == srv {
			r.cpu = dovecotUsage(s).sub(u0[i]).cpu
		}
	}
	for _, l := range strings.Split(res.output, "\n") {
		if strings.HasPrefix(l, "LANESTATS") {
			logf("  %s", l)
		}
	}
	// Everything must have arrived.
	n, err := countAll(dstAddr, users)
	if err != nil {
		return nil, err
	}
	if n != len(b.msgs) {
		return nil, fmt.Errorf("%s: target holds %d messages, source %d\n%s", what, n, len(b.msgs), res.output)
	}
	forget(srv, users)
	logf("  %.0f msg/s, %.1f MB/s, target CPU %.3f ms/msg, peak RSS %d MB, banjia CPU %v", r.rate(), r.mbps(), r.cpuPerMsg(), r.rssKB/1024, res.cpu.Round(10*time.Millisecond))
	return r, nil
}

// countAll counts the messages of users' target mailboxes (LIST-STATUS).
func countAll(addr string, users []benchUser) (int, error) {
	total := 0
	for _, u := range users {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			return 0, err
		}
		if err := c.Login(u.New, u.NewPW).Wait(); err != nil {
			c.Close()
			return 0, err
		}
		list, err := c.List("", "*", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true}}).Collect()
		c.Logout().Wait()
		c.Close()
		if err != nil {
			return 0, err
		}
		for _, l := range list {
			if l.Status != nil && l.Status.NumMessages != nil {
				total += int(*l.Status.NumMessages)
			}
		}
	}
	return total, nil
}

var bodyCount = regexp.MustCompile(`body_count=(\d+)`)

// noop copies a job of noopTotal small-to-medium messages (no attachments),
// then re-runs it with the passwords supplied again: the re-run must fetch
// no body, which the source Dovecot's own logout lines count.
func (b *bench) noop() ([]*row, error) {
	c := b.c
	src, err := b.server(dovecot.Options{MaxUserIPConnections: 500})
	if err != nil {
		return nil, err
	}
	dst, err := b.target(dovecot.Options{Format: "sdbox", MaxUserIPConnections: 500})
	if err != nil {
		return nil, err
	}
	accounts := 20
	per := c.noopTotal / accounts
	logf("no-op job: generating and delivering %d accounts x %d messages", accounts, per)
	users, total, bytes, err := populate(src, dst, "n", accounts, func(i int, u benchUser) []mailgen.Message {
		return mailgen.Mailbox(u.Old, mailgen.Options{Seed: int64(100 + i), Messages: per})
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, "noop")
	os.MkdirAll(dir, 0o700)
	j := &job{bin: c.banjia, dir: dir, users: users}
	if err := j.create(src.IMAPAddr, dst.IMAPAddr); err != nil {
		return nil, err
	}
	logf("no-op job: first copy of %d messages (%.0f MB)", total, float64(bytes)/1e6)
	settle()
	first, err := j.start(c.parallel, c.conns, false)
	if err != nil {
		return nil, err
	}
	n, err := countAll(dst.IMAPAddr, users)
	if err != nil {
		return nil, err
	}
	if n != total {
		return nil, fmt.Errorf("no-op job: first copy left %d of %d messages on the target", n, total)
	}
	copyRow := &row{what: fmt.Sprintf("first copy of the %d-message job, loopback", total), c: c.parallel * c.conns,
		messages: total, bytes: bytes, elapsed: first.elapsed, rssKB: first.rssKB}
	logf("  %v", first.elapsed.Round(time.Millisecond))

	csv, err := j.csv()
	if err != nil {
		return nil, err
	}
	if _, err := j.banjia(nil, "job", "add", "bench", "--accounts", csv); err != nil {
		return nil, err
	}
	logPath := filepath.Join(src.Dir, "log", "dovecot.log")
	before, _ := os.ReadFile(logPath)
	logf("no-op job: re-run")
	settle()
	again, err := j.start(c.parallel, c.conns, true)
	if err != nil {
		return nil, err
	}
	// The source logs each session's bodies fetched at logout; wait for
	// every session of the re-run to have logged out.
	var fetched, sessions, logins int
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, _ := os.ReadFile(logPath)
		tail := string(after[min(len(before), len(after)):])
		logins = strings.Count(tail, "Login: user=")
		fetched, sessions = 0, 0
		for _, m := range bodyCount.FindAllStringSubmatch(tail, -1) {
			k, _ := strconv.Atoi(m[1])
			fetched += k
			sessions++
		}
		if sessions >= logins || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := countAll(dst.IMAPAddr, users); err != nil || n != total {
		return nil, fmt.Errorf("no-op re-run changed the target to %d messages (%v)", n, err)
	}
	note := fmt.Sprintf("%d bodies fetched (source Dovecot's body_count over %d sessions)", fetched, sessions)
	if sessions < logins {
		note += fmt.Sprintf("; %d sessions had not logged out", logins-sessions)
	}
	logf("  %v, %s", again.elapsed.Round(time.Millisecond), note)
	noopRow := &row{what: fmt.Sprintf("no-op re-run of the finished %d-message job", total), c: c.parallel * c.conns,
		messages: 0, elapsed: again.elapsed, rssKB: again.rssKB, note: note, kind: "noop", fetched: fetched}
	return []*row{copyRow, noopRow}, nil
}

// big copies 16 accounts at once, one of them holding a bigMB message, and
// reports banjia's peak RSS.
func (b *bench) big() (*row, error) {
	c := b.c
	src, err := b.server(dovecot.Options{MaxUserIPConnections: 500})
	if err != nil {
		return nil, err
	}
	dst, err := b.target(dovecot.Options{Format: "sdbox", MaxUserIPConnections: 500})
	if err != nil {
		return nil, err
	}
	const accounts = 16
	per := 100
	if c.quick {
		per = 50
	}
	logf("big message: %d accounts x %d messages, one %d MB message", accounts, per, c.bigMB)
	var users []benchUser
	total := 0
	users, total, bytes, err := populate(src, dst, "b", accounts, func(i int, u benchUser) []mailgen.Message {
		msgs := mailgen.Mailbox(u.Old, mailgen.Options{Seed: int64(200 + i), Messages: per, MaxAttachment: 5 << 20})
		if i == 0 {
			big := bigMessage(u.Old, c.bigMB<<20)
			// In the middle of INBOX, so it is in flight with other mail.
			msgs = append(msgs[:per/2], append([]mailgen.Message{{Folder: "INBOX", Body: big, Date: time.Date(2020, 5, 1, 9, 0, 0, 0, time.UTC)}}, msgs[per/2:]...)...)
		}
		return msgs
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, "big")
	os.MkdirAll(dir, 0o700)
	j := &job{bin: c.banjia, dir: dir, users: users}
	if err := j.create(src.IMAPAddr, dst.IMAPAddr); err != nil {
		return nil, err
	}
	settle()
	res, err := j.start(accounts, c.conns, false)
	if err != nil {
		return nil, err
	}
	if n, err := countAll(dst.IMAPAddr, users); err != nil || n != total {
		return nil, fmt.Errorf("big message run: target holds %d of %d messages (%v)", n, total, err)
	}
	r := &row{what: fmt.Sprintf("%d accounts in flight, one %d MB message", accounts, c.bigMB), c: accounts * c.conns,
		messages: total, bytes: bytes, elapsed: res.elapsed, rssKB: res.rssKB, kind: "big"}
	logf("  %v, peak RSS %d MB", res.elapsed.Round(time.Millisecond), res.rssKB/1024)
	return r, nil
}

// bigMessage is a message with one base64 attachment, size bytes in all.
func bigMessage(user string, size int) []byte {
	rng := rand.New(rand.NewPCG(uint64(size), 42))
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: archive@partner.example\r\nTo: %s\r\nSubject: the big one\r\nDate: Fri, 01 May 2020 09:00:00 +0000\r\n", user)
	b.WriteString("Message-ID: <big@partner.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n")
	b.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--b\r\n")
	b.WriteString("Content-Type: application/octet-stream; name=\"scan.tif\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	end := "\r\n--b--\r\n"
	raw := make([]byte, 57)
	for b.Len()+78+len(end) <= size {
		for k := range raw {
			raw[k] = byte(rng.Uint32())
		}
		b.WriteString(base64.StdEncoding.EncodeToString(raw))
		b.WriteString("\r\n")
	}
	b.WriteString(end)
	return b.Bytes()
}
