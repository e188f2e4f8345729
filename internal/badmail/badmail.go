// Package badmail generates a deterministic corpus of bad inputs for the
// migration engine: malformed and extreme messages (bare LF and CR line ends,
// NUL bytes, raw 8-bit and broken RFC 2047 headers, huge header lines, no
// headers, empty and zero-byte messages, missing and duplicate Message-IDs,
// identical twins, binary garbage, messages around a target size limit) and
// folder names that are hard to carry across servers ("&", "/" inside a name
// where the source's delimiter is ".", spaces, Chinese, emoji, names that
// clash after delimiter translation, names the target refuses).
//
// Every item has a short name for reports. The corpus depends on nothing but
// the code: the same bytes every run.
package badmail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Limit is the target's message size limit the corpus is built around (the
// test gives the target Dovecot quota_max_mail_size = 512k).
const Limit = 512 << 10

// Want is what a correct engine must do with an item.
type Want int

const (
	// Exact: the item arrives on the target byte for byte with flags and date.
	Exact Want = iota
	// Fail: the target cannot hold it; it must be failed with a reason.
	Fail
)

func (w Want) String() string {
	if w == Fail {
		return "fail"
	}
	return "exact"
}

// Message is one message item.
type Message struct {
	Name string // short and unique, e.g. "lf-only"
	Kind string // the family, e.g. "line ends"
	// Folder holds the hierarchy levels on the source (UTF-8); {"INBOX"} is
	// the inbox. Message folders are plain ASCII names Deliver can write.
	Folder []string
	Body   []byte
	Flags  []string
	Date   time.Time
	Want   Want
	// Why is a word the failure reason must contain when Want is Fail.
	Why string
}

// Folder is one folder-name item. It holds Probes (ordinary messages) so
// its arrival can be checked. Its levels may hold characters the source
// keeps only through Dovecot's listescape plugin ("/"), so it is created
// and filled over IMAP, as a mail client would.
type Folder struct {
	Name   string   // short and unique, e.g. "slash-in-name"
	Levels []string // hierarchy levels on the source (UTF-8)
	// Target is the expected name on a "/"-delimited target, or "" when
	// the target refuses the name: then the probes must arrive under some
	// other name or be failed with a reason.
	Target string
	// Group "refused" marks names the target refuses and a folder listed
	// after them: a test gives them an account of their own, so that how
	// the engine treats a refused name cannot hide the other items.
	Group  string
	Probes []Message
}

// Corpus is the whole set.
type Corpus struct {
	Messages []Message
	Folders  []Folder
}

// Len is the number of items.
func (c *Corpus) Len() int { return len(c.Messages) + len(c.Folders) }

// IMAPName is a folder's name on a source whose hierarchy delimiter is delim.
func IMAPName(levels []string, delim string) string { return strings.Join(levels, delim) }

// New builds the corpus.
func New() *Corpus {
	g := &gen{rnd: rand.New(rand.NewPCG(20260101, 7)), base: time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)}
	c := &Corpus{}
	c.Messages = g.messages()
	c.Folders = g.folders()
	return c
}

type gen struct {
	rnd  *rand.Rand
	base time.Time
	n    int
}

// meta gives each message its own date and one of five flag patterns.
func (g *gen) meta() (time.Time, []string) {
	g.n++
	d := g.base.Add(time.Duration(g.n) * 37 * time.Minute)
	var flags []string
	switch g.n % 5 {
	case 1:
		flags = []string{`\Seen`}
	case 2:
		flags = []string{`\Seen`, `\Flagged`}
	case 3:
		flags = []string{`\Answered`, `\Seen`}
	case 4:
		flags = []string{`$Forwarded`}
	}
	return d, flags
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rnd.UintN(256))
	}
	return b
}

// hdr is an ordinary CRLF header block for a message called name, with the
// extra header lines given (each without its line end), then a blank line.
func hdr(name string, extra ...string) string {
	var b strings.Builder
	b.WriteString("From: Bad Input <sender@old.test>\r\n")
	b.WriteString("To: receiver@old.test\r\n")
	hasSubject, hasID, hasDate := false, false, false
	for _, e := range extra {
		l := strings.ToLower(e)
		hasSubject = hasSubject || strings.HasPrefix(l, "subject:")
		hasID = hasID || strings.HasPrefix(l, "message-id:")
		hasDate = hasDate || strings.HasPrefix(l, "date:")
	}
	if !hasSubject {
		fmt.Fprintf(&b, "Subject: badmail %s\r\n", name)
	}
	if !hasID {
		fmt.Fprintf(&b, "Message-ID: <%s@badmail.test>\r\n", name)
	}
	if !hasDate {
		b.WriteString("Date: Fri, 01 Mar 2024 09:00:00 +0000\r\n")
	}
	for _, e := range extra {
		if e == "" {
			continue
		}
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// hdrNoID is hdr without the Message-ID line.
func hdrNoID(name string, extra ...string) string {
	h := hdr(name, extra...)
	return strings.Replace(h, fmt.Sprintf("Message-ID: <%s@badmail.test>\r\n", name), "", 1)
}

func (g *gen) messages() []Message {
	var out []Message
	add := func(folder, kind, name string, body []byte) *Message {
		d, f := g.meta()
		out = append(out, Message{Name: name, Kind: kind, Folder: strings.Split(folder, "/"), Body: body, Flags: f, Date: d})
		return &out[len(out)-1]
	}
	s := func(parts ...string) []byte { return []byte(strings.Join(parts, "")) }

	// Line ends (INBOX).
	const eol = "line ends"
	add("INBOX", eol, "lf-only", s("From: a@old.test\nSubject: bare LF everywhere\nMessage-ID: <lf-only@badmail.test>\n\nfirst line\nsecond line\n"))
	add("INBOX", eol, "lf-multipart", s("From: a@old.test\nSubject: LF multipart\nMessage-ID: <lf-multipart@badmail.test>\nMIME-Version: 1.0\n",
		"Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\npart one\n--b1\nContent-Type: text/plain\n\npart two\n--b1--\n"))
	add("INBOX", eol, "lf-500-lines", s("Subject: 500 LF lines\nMessage-ID: <lf-500-lines@badmail.test>\n\n", strings.Repeat("a line ended by a bare LF\n", 500)))
	add("INBOX", eol, "cr-only", s("From: a@old.test\rSubject: bare CR everywhere\rMessage-ID: <cr-only@badmail.test>\r\rbody\rmore\r"))
	add("INBOX", eol, "cr-in-body", s(hdr("cr-in-body"), "one\rtwo\rthree\r\n"))
	add("INBOX", eol, "mixed-eol", s("Subject: mixed\r\nMessage-ID: <mixed-eol@badmail.test>\nX-A: 1\r\r\nbody crlf\r\nbody lf\nbody cr\rbody lfcr\n\rend"))
	add("INBOX", eol, "no-final-eol", s(hdr("no-final-eol"), "last line has no line end"))
	add("INBOX", eol, "crlf-head-lf-body", s(hdr("crlf-head-lf-body"), "lf body\nlf body\n"))
	add("INBOX", eol, "cr-cr-lf", s("Subject: CRCRLF\r\r\nMessage-ID: <cr-cr-lf@badmail.test>\r\r\n\r\r\nbody\r\r\n"))
	add("INBOX", eol, "only-crlf", s("\r\n"))
	add("INBOX", eol, "only-lf", s("\n"))
	add("INBOX", eol, "only-cr", s("\r"))
	add("INBOX", eol, "one-byte", s("x"))
	add("INBOX", eol, "blank-lines", s("\r\n\r\n\r\n\r\n"))

	// NUL bytes.
	const nul = "NUL bytes"
	add("NUL", nul, "nul-in-body", s(hdr("nul-in-body"), "before\x00after\r\n\x00\x00\x00\r\n"))
	add("NUL", nul, "nul-in-header", s("Subject: nul\x00inside\r\nMessage-ID: <nul-in-header@badmail.test>\r\n\r\nbody\r\n"))
	add("NUL", nul, "nul-only-1k", bytes.Repeat([]byte{0}, 1024))
	add("NUL", nul, "nul-after-headers", s(hdr("nul-after-headers"), "\x00"))
	add("NUL", nul, "nul-header-name", s("X-\x00Bad: v\r\nMessage-ID: <nul-header-name@badmail.test>\r\n\r\nbody\r\n"))

	// Raw 8-bit headers.
	const h8 = "8-bit headers"
	add("Headers", h8, "utf8-subject", s(hdr("utf8-subject", "Subject: 季度报告 – Grüße 📧"), "body\r\n"))
	add("Headers", h8, "utf8-from", s(hdr("utf8-from", "From: 张伟 <zhang@old.test>"), "body\r\n"))
	gbkSubject := "Subject: \xd6\xd0\xce\xc4\xd3\xca\xbc\xfe \xb2\xe2\xca\xd4" // 中文邮件 测试 in GBK
	add("Headers", h8, "gbk-subject", s(hdr("gbk-subject", gbkSubject), "body\r\n"))
	add("Headers", h8, "gbk-from", s(hdr("gbk-from", "From: \xc4\xe3\xba\xc3 <nihao@old.test>"), "body\r\n"))
	add("Headers", h8, "gbk-body-no-charset", s(hdr("gbk-body-no-charset", "Content-Type: text/plain"), "\xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7\r\n"))
	add("Headers", h8, "big5-subject", s(hdr("big5-subject", "Subject: \xa4\xa4\xa4\xe5"), "body\r\n"))
	add("Headers", h8, "sjis-subject", s(hdr("sjis-subject", "Subject: \x93\xfa\x96\x7b\x8c\xea"), "body\r\n"))
	add("Headers", h8, "latin1-subject", s(hdr("latin1-subject", "Subject: Gr\xfc\xdfe aus K\xf6ln"), "body\r\n"))
	add("Headers", h8, "invalid-utf8", s(hdr("invalid-utf8", "Subject: cut \xe4\xbd overlong \xc0\xaf lone \x80 end"), "body\r\n"))
	add("Headers", h8, "utf8-header-name", s(hdr("utf8-header-name", "X-Ünïcödé-Name: value"), "body\r\n"))

	// Broken RFC 2047 encoded-words.
	const ew = "RFC 2047"
	add("Headers", ew, "ew-unterminated", s(hdr("ew-unterminated", "Subject: =?UTF-8?B?5L2g5aW9"), "body\r\n"))
	add("Headers", ew, "ew-bad-base64", s(hdr("ew-bad-base64", "Subject: =?UTF-8?B?@@@!!!?="), "body\r\n"))
	add("Headers", ew, "ew-unknown-charset", s(hdr("ew-unknown-charset", "Subject: =?x-klingon?Q?tlhIngan?="), "body\r\n"))
	add("Headers", ew, "ew-bad-q", s(hdr("ew-bad-q", "Subject: =?UTF-8?Q?=ZZ=4?="), "body\r\n"))
	badGBK := base64.StdEncoding.EncodeToString([]byte{0xd6, 0xff, 0x81, 0x20, 0xfe})
	add("Headers", ew, "ew-gbk-invalid", s(hdr("ew-gbk-invalid", "Subject: =?GBK?B?"+badGBK+"?="), "body\r\n"))
	// 你 is E4 BD A0: split across two encoded-words.
	add("Headers", ew, "ew-split-char", s(hdr("ew-split-char", "Subject: =?UTF-8?Q?=E4=BD?= =?UTF-8?Q?=A0?="), "body\r\n"))
	add("Headers", ew, "ew-no-space", s(hdr("ew-no-space", "Subject: =?UTF-8?Q?a?==?UTF-8?Q?b?=word=?UTF-8?Q?c?="), "body\r\n"))
	add("Headers", ew, "ew-in-address", s(hdr("ew-in-address", "From: =?UTF-8?B?5byg?=@old.test"), "body\r\n"))
	add("Headers", ew, "ew-empty", s(hdr("ew-empty", "Subject: =?UTF-8?B??="), "body\r\n"))
	add("Headers", ew, "ew-no-encoding", s(hdr("ew-no-encoding", "Subject: =?UTF-8??abc?="), "body\r\n"))
	add("Headers", ew, "ew-space-inside", s(hdr("ew-space-inside", "Subject: =?utf-8?q?a b c?="), "body\r\n"))
	add("Headers", ew, "ew-500-words", s(hdr("ew-500-words", "Subject: "+strings.Repeat("=?UTF-8?B?5L2g?= ", 500)), "body\r\n"))

	// Long and odd header lines.
	const lh = "long headers"
	add("Headers", lh, "header-10k-line", s(hdr("header-10k-line", "Subject: "+strings.Repeat("S", 10000-len("Subject: "))), "body\r\n"))
	add("Headers", lh, "header-100k-unfolded", s(hdr("header-100k-unfolded", "X-Long: "+strings.Repeat("L", 100000-len("X-Long: "))), "body\r\n"))
	add("Headers", lh, "header-998", s(hdr("header-998", "X-Edge: "+strings.Repeat("e", 998-len("X-Edge: "))), "body\r\n"))
	add("Headers", lh, "header-999", s(hdr("header-999", "X-Edge: "+strings.Repeat("e", 999-len("X-Edge: "))), "body\r\n"))
	add("Headers", lh, "header-1000-folds", s(hdr("header-1000-folds", "X-Folded: start"+strings.Repeat("\r\n continued", 1000)), "body\r\n"))
	var refs []string
	for i := 0; i < 1000; i++ {
		refs = append(refs, fmt.Sprintf("<ref%04d@badmail.test>", i))
	}
	add("Headers", lh, "references-1000", s(hdr("references-1000", "References: "+strings.Join(refs, "\r\n ")), "body\r\n"))
	var many []string
	for i := 0; i < 1000; i++ {
		many = append(many, fmt.Sprintf("X-H%04d: %d", i, i))
	}
	add("Headers", lh, "headers-1000", s(hdr("headers-1000", many...), "body\r\n"))
	var subs []string
	for i := 0; i < 50; i++ {
		subs = append(subs, fmt.Sprintf("Subject: subject %d", i))
	}
	add("Headers", lh, "subject-x50", s(hdr("subject-x50", subs...), "body\r\n"))
	add("Headers", lh, "no-space-after-colon", s(hdr("no-space-after-colon", "Subject:x", "X-Y:z"), "body\r\n"))
	add("Headers", lh, "space-before-colon", s(hdr("space-before-colon", "Subject : x"), "body\r\n"))
	add("Headers", lh, "space-in-name", s(hdr("space-in-name", "Bad Header: x"), "body\r\n"))
	add("Headers", lh, "continuation-first", s(" starts with a fold\r\n", hdr("continuation-first"), "body\r\n"))
	add("Headers", lh, "mbox-from-line", s("From sender@old.test Fri Mar  1 09:00:00 2024\r\n", hdr("mbox-from-line"), ">From the body\r\n"))
	add("Headers", lh, "empty-header-name", s(hdr("empty-header-name", ": no name"), "body\r\n"))
	add("Headers", lh, "colons-only", s(hdr("colons-only", "::::"), "body\r\n"))
	add("Headers", lh, "tab-fold", s(hdr("tab-fold", "Subject: folded\r\n\twith a tab\r\n\t\tand two"), "body\r\n"))

	// Structure: no headers, headers only, empty.
	const st = "structure"
	add("Structure", st, "no-headers-blank-first", s("\r\nbody only, no-headers-blank-first\r\n"))
	add("Structure", st, "no-headers-text", s("just text without any header (no-headers-text)\r\nsecond line\r\n"))
	add("Structure", st, "headers-only-no-blank", s("Subject: headers only\r\nMessage-ID: <headers-only-no-blank@badmail.test>\r\n"))
	add("Structure", st, "header-no-eol", s("Subject: header-no-eol"))
	add("Structure", st, "empty-body", s(hdr("empty-body")))
	add("Structure", st, "blank-then-nothing", s("Subject: blank-then-nothing\r\n\r\n"))
	m := add("Structure", st, "zero-bytes", nil)
	m.Body = []byte{}
	m.Want, m.Why = Fail, "zero byte"

	// Message-IDs.
	const id = "Message-IDs"
	add("IDs", id, "no-id-1", s(hdrNoID("no-id-1"), "first message without an ID\r\n"))
	add("IDs", id, "no-id-2", s(hdrNoID("no-id-2"), "second message without an ID\r\n"))
	add("IDs", id, "dup-id-a", s(hdr("dup-id-a", "Message-ID: <same@badmail.test>"), "body A\r\n"))
	// Same ID and same size, different bytes.
	add("IDs", id, "dup-id-b", s(hdr("dup-id-b", "Message-ID: <same@badmail.test>", "Subject: duplicate"), "body B\r\n"))
	add("IDs", id, "dup-id-same-size", s(hdr("dup-id-same-size", "Message-ID: <same@badmail.test>", "Subject: duplicate"), "body C\r\n"))
	add("INBOX", id, "dup-id-other-folder", s(hdr("dup-id-other-folder", "Message-ID: <same@badmail.test>"), "body D in another folder\r\n"))
	add("IDs", id, "id-empty", s(hdr("id-empty", "Message-ID:"), "body\r\n"))
	add("IDs", id, "id-garbage", s(hdr("id-garbage", "Message-ID: not an id at all"), "body\r\n"))
	add("IDs", id, "id-10k", s(hdr("id-10k", "Message-ID: <"+strings.Repeat("i", 10000)+"@badmail.test>"), "body\r\n"))
	add("IDs", id, "id-twice", s(hdr("id-twice", "Message-ID: <one@badmail.test>", "Message-ID: <two@badmail.test>"), "body\r\n"))

	// Identical messages in one folder.
	const tw = "identical twins"
	twin := s(hdr("twin"), "identical twin\r\n")
	d, f := g.meta()
	out = append(out,
		Message{Name: "twin-1", Kind: tw, Folder: []string{"Twins"}, Body: twin, Flags: f, Date: d},
		Message{Name: "twin-2", Kind: tw, Folder: []string{"Twins"}, Body: twin, Flags: f, Date: d},
		Message{Name: "twin-3", Kind: tw, Folder: []string{"Twins"}, Body: twin, Flags: f, Date: d})
	twinF := s(hdr("twin-flags"), "identical body, different flags\r\n")
	out = append(out,
		Message{Name: "twin-flags-seen", Kind: tw, Folder: []string{"Twins"}, Body: twinF, Flags: []string{`\Seen`}, Date: d},
		Message{Name: "twin-flags-none", Kind: tw, Folder: []string{"Twins"}, Body: twinF, Date: d})
	twinD := s(hdr("twin-date"), "identical body, different dates\r\n")
	out = append(out,
		Message{Name: "twin-date-1", Kind: tw, Folder: []string{"Twins"}, Body: twinD, Date: d},
		Message{Name: "twin-date-2", Kind: tw, Folder: []string{"Twins"}, Body: twinD, Date: d.Add(24 * time.Hour)})
	add("INBOX", tw, "twin-other-folder", twin).Date = d

	// Bodies: long lines, binary, broken MIME.
	const bd = "bodies"
	add("Bodies", bd, "body-line-100k", s(hdr("body-line-100k"), strings.Repeat("b", 100000), "\r\n"))
	add("Bodies", bd, "body-line-200k-no-eol", s(hdr("body-line-200k-no-eol"), strings.Repeat("c", 200000)))
	add("Bodies", bd, "body-400x998", s(hdr("body-400x998"), strings.Repeat(strings.Repeat("d", 998)+"\r\n", 400)))
	add("Bodies", bd, "binary-4k", g.bytes(4096))
	add("Bodies", bd, "binary-64k", g.bytes(64<<10))
	add("Bodies", bd, "binary-after-headers", append([]byte(hdr("binary-after-headers", "Content-Transfer-Encoding: binary", "Content-Type: application/octet-stream")), g.bytes(8192)...))
	all := make([]byte, 0, 256*4)
	for r := 0; r < 4; r++ {
		for b := 0; b < 256; b++ {
			all = append(all, byte(b))
		}
	}
	add("Bodies", bd, "all-256-bytes", append([]byte(hdr("all-256-bytes")), all...))
	hi := make([]byte, 2048)
	for i := range hi {
		hi[i] = byte(0x80 + i%128)
	}
	add("Bodies", bd, "high-bit-only", hi)
	add("Bodies", bd, "base64-invalid", s(hdr("base64-invalid", "MIME-Version: 1.0", "Content-Transfer-Encoding: base64"), "SGVsbG8gd29ybGQ=!!!@@@***\r\n====\r\nnot base64 at all\r\n"))
	add("Bodies", bd, "qp-invalid", s(hdr("qp-invalid", "MIME-Version: 1.0", "Content-Transfer-Encoding: quoted-printable"), "bad =ZZ escape =\r\n=4\r\ntrailing =  \r\n="))
	add("Bodies", bd, "mime-no-end-boundary", s(hdr("mime-no-end-boundary", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="nb"`), "--nb\r\nContent-Type: text/plain\r\n\r\nno closing boundary\r\n"))
	add("Bodies", bd, "mime-no-boundary-param", s(hdr("mime-no-boundary-param", "MIME-Version: 1.0", "Content-Type: multipart/mixed"), "--x\r\n\r\npart\r\n--x--\r\n"))
	add("Bodies", bd, "mime-empty-boundary", s(hdr("mime-empty-boundary", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary=""`), "--\r\n\r\npart\r\n----\r\n"))
	var nest strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&nest, "--n%d\r\nContent-Type: multipart/mixed; boundary=\"n%d\"\r\n\r\n", i, i+1)
	}
	nest.WriteString("--n100\r\nContent-Type: text/plain\r\n\r\ndeep\r\n")
	for i := 100; i >= 0; i-- {
		fmt.Fprintf(&nest, "--n%d--\r\n", i)
	}
	add("Bodies", bd, "mime-nested-100", s(hdr("mime-nested-100", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="n0"`), nest.String()))
	add("Bodies", bd, "mime-8bit-filename", s(hdr("mime-8bit-filename", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="f"`),
		"--f\r\nContent-Type: application/pdf; name=\"报告.pdf\"\r\nContent-Disposition: attachment; filename=\"报告.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--f--\r\n"))
	add("Bodies", bd, "mime-rfc2231-broken", s(hdr("mime-rfc2231-broken", "MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="g"`),
		"--g\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename*=utf-8''%ZZ%E4; filename*1*=%BD\r\n\r\nx\r\n--g--\r\n"))

	// Sizes around the target's limit (the body makes up the exact size).
	const sz = "size limit"
	sized := func(name string, size int) []byte {
		h := hdr(name)
		body := make([]byte, 0, size)
		body = append(body, h...)
		line := strings.Repeat("z", 76) + "\r\n"
		for len(body)+len(line) <= size {
			body = append(body, line...)
		}
		for len(body) < size {
			body = append(body, 'z')
		}
		return body
	}
	add("Size", sz, "size-limit-minus-1", sized("size-limit-minus-1", Limit-1))
	add("Size", sz, "size-at-limit", sized("size-at-limit", Limit))
	m = add("Size", sz, "size-limit-plus-1", sized("size-limit-plus-1", Limit+1))
	m.Want, m.Why = Fail, "too large"
	m = add("Size", sz, "size-3x-limit", sized("size-3x-limit", 3*Limit))
	m.Want, m.Why = Fail, "too large"
	add("Size", sz, "size-small-after-big", s(hdr("size-small-after-big"), "a small message after the big ones\r\n"))

	// Dates and flags.
	const md = "dates and flags"
	add("Meta", md, "date-1970", s(hdr("date-1970", "Date: Fri, 02 Jan 1970 00:00:00 +0000"), "body\r\n")).Date = time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)
	add("Meta", md, "date-2099", s(hdr("date-2099", "Date: Thu, 31 Dec 2099 23:59:59 +0000"), "body\r\n")).Date = time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)
	add("Meta", md, "date-header-garbage", s(hdr("date-header-garbage", "Date: yesterday at noon, probably"), "body\r\n"))
	add("Meta", md, "date-header-missing", []byte(strings.Replace(hdr("date-header-missing"), "Date: Fri, 01 Mar 2024 09:00:00 +0000\r\n", "", 1)+"body\r\n"))
	add("Meta", md, "flags-all-system", s(hdr("flags-all-system"), "body\r\n")).Flags = []string{`\Answered`, `\Deleted`, `\Draft`, `\Flagged`, `\Seen`}
	add("Meta", md, "flags-deleted-only", s(hdr("flags-deleted-only"), "body\r\n")).Flags = []string{`\Deleted`}
	kws := []string{`$Forwarded`, `$MDNSent`, `NonJunk`, `$Label1`}
	for i := len(kws); i < 20; i++ {
		kws = append(kws, fmt.Sprintf("kw%02d", i))
	}
	add("Meta", md, "keywords-20", s(hdr("keywords-20"), "body\r\n")).Flags = kws
	add("Meta", md, "flags-none", s(hdr("flags-none"), "body\r\n")).Flags = nil
	return out
}

func (g *gen) folders() []Folder {
	var out []Folder
	add := func(name string, levels []string, target string) *Folder {
		f := Folder{Name: name, Levels: levels, Target: target}
		d, fl := g.meta()
		f.Probes = []Message{{Name: name + "/probe", Kind: "folder names", Folder: levels,
			Body: []byte(hdr("folder-"+name) + "probe for folder item " + name + "\r\n"), Flags: fl, Date: d}}
		out = append(out, f)
		return &out[len(out)-1]
	}
	one := func(s string) []string { return []string{s} }
	add("ampersand", one("R&D"), "R&D")
	add("amp-dash", one("&-"), "&-")
	add("mutf7-lookalike", one("&ZeVnLIqe-"), "&ZeVnLIqe-")
	// "/" inside one level: the source (delimiter ".") holds it through
	// listescape; the target's delimiter is "/", so it becomes "_" and then
	// clashes with the real "a_b" and "a_b (2)".
	add("slash-in-name", one("a/b"), "a_b (3)")
	add("underscore-clash", one("a_b"), "a_b")
	add("suffix-clash", one("a_b (2)"), "a_b (2)")
	add("dot-hierarchy", []string{"a", "b"}, "a/b")
	add("slash-in-child", []string{"p", "q/r"}, "p/q_r")
	add("slashes-around", one("/x/"), "_x_")
	add("leading-space", one(" lead"), " lead")
	add("trailing-space", one("trail "), "trail ")
	add("chinese", one("客户资料"), "客户资料")
	add("chinese-nested", []string{"项目", "二〇二五年"}, "项目/二〇二五年")
	add("emoji", one("📧 邮件 🎉"), "📧 邮件 🎉")
	add("latin-accents", one("Ünïcödé Ördner"), "Ünïcödé Ördner")
	add("quotes", one(`say "hi"`), `say "hi"`)
	add("long-name-200", one(strings.Repeat("n", 200)), strings.Repeat("n", 200))
	add("inbox-child", []string{"INBOX", "child"}, "INBOX/child")
	add("case-upper", one("Work"), "Work")
	add("case-lower", one("work"), "work")
	deep := []string{"l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10"}
	add("deep-10", deep, strings.Join(deep, "/"))
	// Names a Dovecot sdbox target refuses (a leading "~"; its own
	// "dbox-Mails"), and an ordinary folder listed after them ("ω" sorts
	// after "~"), to show whether the account goes on.
	add("tilde-first", one("~home"), "").Group = "refused"
	add("dbox-reserved", one("dbox-Mails"), "").Group = "refused"
	add("after-refused", one("ω after refused"), "ω after refused").Group = "refused"
	return out
}
