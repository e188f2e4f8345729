// Package mailgen makes a deterministic corpus of realistic mail (English and
// Chinese folders and subjects, flags, dates over years, attachments, missing
// and duplicate Message-IDs) for tests, the demo and benchmarks.
package mailgen

import (
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"mime"
	"strings"
	"time"
)

// Options shape one mailbox.
type Options struct {
	Seed int64
	// Messages is the total for the mailbox, over all folders.
	Messages int
	// Folders are UTF-8 with "/" between levels; nil means DefaultFolders.
	// The first folder gets about half of the mail (INBOX, by default).
	Folders []string
	// MaxAttachment > 0 gives about 5% of messages a base64 attachment whose
	// encoded size lies between 200 KB and MaxAttachment bytes, so the
	// message stays close to that size (a --max-size test can rely on it).
	MaxAttachment int
	// NoMessageIDEvery: the Nth, 2Nth... message has no Message-ID (0: never).
	NoMessageIDEvery int
	// DuplicateIDEvery: the Nth, 2Nth... message reuses the Message-ID of the
	// latest earlier message that had one (0: never). It wins over
	// NoMessageIDEvery when both pick the same message.
	DuplicateIDEvery int
}

// DefaultFolders mixes special-use folders, Chinese names, nesting and a
// name that needs escaping in modified UTF-7 ("&").
var DefaultFolders = []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive/2019", "客户/北京", "项目/2024/报告", "Projects & Plans"}

// Message is one generated message; Date is both the Date header and the
// INTERNALDATE a server should keep.
type Message struct {
	Folder string
	Body   []byte
	Flags  []string
	Date   time.Time
}

var subjectsEN = []string{"Quarterly report", "Meeting notes", "Invoice %d", "Re: project plan", "Travel booking",
	"Welcome aboard", "Contract draft v%d", "Lunch on Friday?", "Server maintenance window", "Fwd: photos",
	"Re: Re: budget for Q%d", "Customer feedback"}
var subjectsZH = []string{"季度报告", "会议纪要", "发票 %d 号", "回复：项目计划", "差旅预订", "欢迎加入", "合同草稿第%d版",
	"周五午饭？", "服务器维护通知", "转发：照片"}

// subjectsMixed are the English-and-Chinese subjects real mailboxes are full of.
var subjectsMixed = []string{"Re: 季度报告 Q%d", "Fwd: 发票 invoice #%d", "Meeting 会议 at 3pm", "[项目] status update", "Budget 预算 v%d"}

var namesZH = []string{"张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊"}

var wordsEN = strings.Fields(`the a of to and in for on with report plan budget team customer order schedule review
update please thanks regards meeting office project quarter sales market design server data release attached
see below next week deadline contract invoice travel approve draft version`)

var wordsZH = []rune("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理")

// Bodies are slices of two fixed text pools (built once from a fixed seed),
// each message starting at its own random line: copying lines is what makes
// 10,000 messages take milliseconds rather than seconds, and the output
// still depends only on Options and user.
var (
	poolEN = buildPool(false)
	poolZH = buildPool(true)
)

const poolSize = 256 << 10

// buildPool returns text already wrapped into CRLF lines: plain ASCII for
// English, quoted-printable UTF-8 (soft breaks at 76) for Chinese.
func buildPool(zh bool) []string {
	rng := rand.New(rand.NewPCG(7, 11))
	var lines []string
	total := 0
	for total < poolSize {
		var line string
		if zh {
			var b strings.Builder
			n := 10 + rng.IntN(30)
			for k := 0; k < n; k++ {
				b.WriteRune(wordsZH[rng.IntN(len(wordsZH))])
				if k%9 == 8 {
					b.WriteString("，")
				}
			}
			b.WriteString("。")
			line = quotedPrintable(b.String())
		} else {
			var b strings.Builder
			for b.Len() < 60+rng.IntN(12) {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(wordsEN[rng.IntN(len(wordsEN))])
			}
			line = b.String() + "\r\n"
		}
		lines = append(lines, line)
		total += len(line)
	}
	return lines
}

// quotedPrintable encodes one paragraph of UTF-8 with soft line breaks, ending
// in a hard CRLF. Hand-written (rather than mime/quotedprintable) because it
// runs only at init over fixed text and must never emit a bare LF.
func quotedPrintable(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	col := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var enc string
		if c >= 0x21 && c <= 0x7e && c != '=' || c == ' ' && i+1 < len(s) {
			enc = string(c)
		} else {
			enc = string([]byte{'=', hex[c>>4], hex[c&15]})
		}
		if col+len(enc) > 75 {
			b.WriteString("=\r\n")
			col = 0
		}
		b.WriteString(enc)
		col += len(enc)
	}
	b.WriteString("\r\n")
	return b.String()
}

// Mailbox generates the mail of one user: the same user and options give the
// same bytes, and different users get different Message-IDs.
func Mailbox(user string, o Options) []Message {
	folders := o.Folders
	if len(folders) == 0 {
		folders = DefaultFolders
	}
	h := fnv.New64a()
	h.Write([]byte(user))
	userHash := h.Sum64()
	rng := rand.New(rand.NewPCG(userHash, uint64(o.Seed)^0x9e3779b97f4a7c15))
	start := time.Date(2016, 1, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	span := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).Sub(start)
	domain := "example.com"
	if _, d, ok := strings.Cut(user, "@"); ok {
		domain = d
	}
	out := make([]Message, 0, o.Messages)
	var prevID string
	for i := 0; i < o.Messages; i++ {
		folder := folders[0]
		if len(folders) > 1 && rng.IntN(2) == 1 {
			folder = folders[1+rng.IntN(len(folders)-1)]
		}
		// Dates rise with i, with jitter, so each folder is ascending-ish
		// as real mailboxes are; whole seconds, as INTERNALDATE keeps.
		date := start.Add(time.Duration(float64(span) * (float64(i) + rng.Float64()) / float64(max(o.Messages, 1)))).Truncate(time.Second)
		// The user's hash keeps IDs apart between users of one domain.
		id := fmt.Sprintf("<%d.%d.%016x@%s>", o.Seed, i, userHash^rng.Uint64(), domain)
		nth := func(every int) bool { return every > 0 && (i+1)%every == 0 }
		switch {
		case nth(o.DuplicateIDEvery) && prevID != "":
			id = prevID
		case nth(o.NoMessageIDEvery):
			id = ""
		}
		if id != "" {
			prevID = id
		}
		attach := 0
		if o.MaxAttachment > 0 && rng.IntN(20) == 0 {
			lo := min(200<<10, o.MaxAttachment)
			attach = lo + rng.IntN(o.MaxAttachment-lo+1)
		}
		out = append(out, Message{
			Folder: folder,
			Body:   body(rng, user, i, id, date, attach),
			Flags:  flags(rng, folder),
			Date:   date,
		})
	}
	return out
}

func flags(rng *rand.Rand, folder string) []string {
	var f []string
	if folder == "Sent" || rng.IntN(10) < 7 {
		f = append(f, `\Seen`)
	}
	if rng.IntN(8) == 0 {
		f = append(f, `\Answered`)
	}
	if rng.IntN(10) == 0 {
		f = append(f, `\Flagged`)
	}
	if folder == "Drafts" {
		f = append(f, `\Draft`)
	}
	if rng.IntN(12) == 0 {
		f = append(f, "$Forwarded")
	}
	if rng.IntN(15) == 0 {
		f = append(f, "work")
	}
	return f
}

func subject(rng *rand.Rand, i int) (string, bool) {
	var s string
	zh := false
	switch k := rng.IntN(5); {
	case k < 2:
		s = subjectsEN[rng.IntN(len(subjectsEN))]
	case k < 4:
		s, zh = subjectsZH[rng.IntN(len(subjectsZH))], true
	default:
		s, zh = subjectsMixed[rng.IntN(len(subjectsMixed))], true
	}
	if strings.Contains(s, "%d") {
		s = fmt.Sprintf(s, i%100+1)
	}
	// BEncoding leaves pure ASCII alone and encodes the rest as RFC 2047 UTF-8.
	return mime.BEncoding.Encode("UTF-8", s), zh
}

func body(rng *rand.Rand, user string, i int, id string, date time.Time, attach int) []byte {
	subj, zh := subject(rng, i)
	// Text sizes are log-normal around 9.5 KB so whole messages have a median
	// near 10 KB with a long tail, as real mail does.
	textSize := int(math.Exp(math.Log(9500) + 0.8*rng.NormFloat64()))
	textSize = min(max(textSize, 600), 150<<10)
	alternative := attach == 0 && rng.IntN(4) == 0
	if alternative {
		textSize /= 2 // the HTML part carries the same text again
	}
	b := make([]byte, 0, textSize*2+attach+1024)
	hdr := func(k, v string) { b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...) }
	sender := fmt.Sprintf("sender%d@partner%d.example", rng.IntN(50), rng.IntN(9))
	if zh {
		sender = mime.BEncoding.Encode("UTF-8", namesZH[rng.IntN(len(namesZH))]) + " <" + sender + ">"
	}
	hdr("From", sender)
	hdr("To", user)
	hdr("Subject", subj)
	hdr("Date", date.Format(time.RFC1123Z))
	if id != "" {
		hdr("Message-ID", id)
	}
	hdr("MIME-Version", "1.0")
	boundary := fmt.Sprintf("=_banjia_%d_%08x", i, rng.Uint32())
	text := func() {
		if zh {
			b = append(b, "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"...)
		} else {
			b = append(b, "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"...)
		}
		b = appendPool(b, rng, zh, textSize)
	}
	switch {
	case attach > 0:
		hdr("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
		b = append(b, "\r\n--"+boundary+"\r\n"...)
		text()
		b = append(b, "\r\n--"+boundary+"\r\n"...)
		b = append(b, "Content-Type: application/pdf; name=\"report.pdf\"\r\n"+
			"Content-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"...)
		b = appendBase64(b, rng, attach)
		b = append(b, "\r\n--"+boundary+"--\r\n"...)
	case alternative:
		hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b = append(b, "\r\n--"+boundary+"\r\n"...)
		text()
		b = append(b, "\r\n--"+boundary+"\r\n"...)
		b = append(b, "Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<html><body><p>\r\n"...)
		b = appendPool(b, rng, zh, textSize)
		b = append(b, "</p></body></html>\r\n\r\n--"+boundary+"--\r\n"...)
	default:
		// A single-part message: the part headers text writes are the
		// last of the message's own.
		text()
	}
	return b
}

// appendPool copies whole lines of a pool, from a random line on, until
// about size bytes are written.
func appendPool(b []byte, rng *rand.Rand, zh bool, size int) []byte {
	pool := poolEN
	if zh {
		pool = poolZH
	}
	k := rng.IntN(len(pool))
	for n := 0; n < size; k++ {
		line := pool[k%len(pool)]
		b = append(b, line...)
		n += len(line)
	}
	return b
}

// appendBase64 writes random bytes base64-encoded in 76-character CRLF
// lines, about size bytes in all (the encoded size is what a server counts).
func appendBase64(b []byte, rng *rand.Rand, size int) []byte {
	const perLine = 57 // raw bytes per 76-character line
	lines := max(size/78, 1)
	raw := make([]byte, perLine)
	enc := make([]byte, base64.StdEncoding.EncodedLen(perLine))
	for l := 0; l < lines; l++ {
		for k := 0; k < perLine; k += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && k+j < perLine; j++ {
				raw[k+j] = byte(v >> (8 * j))
			}
		}
		base64.StdEncoding.Encode(enc, raw)
		b = append(append(b, enc...), "\r\n"...)
	}
	return b
}
