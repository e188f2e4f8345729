// Package mailgen makes a deterministic corpus of realistic mail (English and
// Chinese folders and subjects, flags, dates over years, attachments, missing
// and duplicate Message-IDs) for tests, the demo and benchmarks.
package mailgen

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// Options shape one mailbox.
type Options struct {
	Seed     int64
	Messages int
	// Folders are UTF-8 with "/" between levels; nil means DefaultFolders.
	Folders []string
	// MaxAttachment > 0 gives about 5% of messages a base64 attachment of
	// 200 KB up to this many bytes.
	MaxAttachment int
	// NoMessageIDEvery: every Nth message has no Message-ID (0: never).
	NoMessageIDEvery int
	// DuplicateIDEvery: every Nth message reuses the previous Message-ID (0: never).
	DuplicateIDEvery int
}

// DefaultFolders mixes special folders, Chinese names and nesting.
var DefaultFolders = []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive/2019", "客户/北京", "项目/2024/报告", "Projects & Plans"}

// Message is one generated message.
type Message struct {
	Folder string
	Body   []byte
	Flags  []string
	Date   time.Time
}

var subjectsEN = []string{"Quarterly report", "Meeting notes", "Invoice %d", "Re: project plan", "Travel booking",
	"Welcome aboard", "Contract draft v%d", "Lunch on Friday?", "Server maintenance window", "Fwd: photos"}
var subjectsZH = []string{"季度报告", "会议纪要", "发票 %d 号", "回复：项目计划", "差旅预订", "欢迎加入", "合同草稿第%d版",
	"周五午饭？", "服务器维护通知", "转发：照片"}
var words = strings.Fields(`the a of to and in for on with report plan budget team customer order schedule review
update please thanks regards meeting office project quarter sales market design server data release`)
var wordsZH = []rune("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理")

// Mailbox generates the mail of one user: the same options give the same
// bytes, and different users get different Message-IDs.
func Mailbox(user string, o Options) []Message {
	folders := o.Folders
	if len(folders) == 0 {
		folders = DefaultFolders
	}
	seed := uint64(o.Seed)
	for _, c := range user {
		seed = seed*131 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(o.Seed)^0x9e3779b97f4a7c15))
	start := time.Date(2016, 1, 1, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	span := time.Date(2025, 12, 31, 0, 0, 0, 0, time.UTC).Sub(start)
	out := make([]Message, 0, o.Messages)
	var prevID string
	for i := 0; i < o.Messages; i++ {
		// INBOX gets about half the mail; dates rise with i so folders are
		// ascending-ish, as real mailboxes are.
		folder := folders[0]
		if rng.IntN(2) == 1 && len(folders) > 1 {
			folder = folders[1+rng.IntN(len(folders)-1)]
		}
		date := start.Add(time.Duration(float64(span) * (float64(i) + rng.Float64()) / float64(max(o.Messages, 1)))).Truncate(time.Second)
		id := fmt.Sprintf("<%d.%d.%x@%s>", o.Seed, i, rng.Uint32(), domainOf(user))
		switch {
		case o.DuplicateIDEvery > 0 && i > 0 && i%o.DuplicateIDEvery == 0 && prevID != "":
			id = prevID
		case o.NoMessageIDEvery > 0 && i%o.NoMessageIDEvery == o.NoMessageIDEvery-1:
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

func domainOf(user string) string {
	if _, d, ok := strings.Cut(user, "@"); ok {
		return d
	}
	return "example.com"
}

func flags(rng *rand.Rand, folder string) []string {
	var f []string
	if rng.IntN(10) < 7 {
		f = append(f, `\Seen`)
	}
	if rng.IntN(10) == 0 {
		f = append(f, `\Flagged`)
	}
	if rng.IntN(8) == 0 {
		f = append(f, `\Answered`)
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

func body(rng *rand.Rand, user string, i int, id string, date time.Time, attach int) []byte {
	var b strings.Builder
	zh := rng.IntN(2) == 0
	var subject string
	if zh {
		s := subjectsZH[rng.IntN(len(subjectsZH))]
		if strings.Contains(s, "%d") {
			s = fmt.Sprintf(s, i)
		}
		subject = mime.BEncoding.Encode("UTF-8", s)
	} else {
		subject = subjectsEN[rng.IntN(len(subjectsEN))]
		if strings.Contains(subject, "%d") {
			subject = fmt.Sprintf(subject, i)
		}
	}
	from := fmt.Sprintf("sender%d@partner%d.example", rng.IntN(50), rng.IntN(9))
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", user)
	hdr("Subject", subject)
	hdr("Date", date.Format(time.RFC1123Z))
	if id != "" {
		hdr("Message-ID", id)
	}
	hdr("MIME-Version", "1.0")
	// Median around 10 KB: most texts a few KB, some much longer.
	textSize := 2000 + int(rng.ExpFloat64()*9000)
	text := paragraph(rng, textSize, zh)
	boundary := fmt.Sprintf("=_banjia_%d_%x", i, rng.Uint32())
	switch {
	case attach > 0:
		hdr("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
		b.WriteString("\r\n--" + boundary + "\r\n")
		writeText(&b, text, zh)
		b.WriteString("\r\n--" + boundary + "\r\n")
		b.WriteString("Content-Type: application/octet-stream; name=\"report.bin\"\r\n")
		b.WriteString("Content-Disposition: attachment; filename=\"report.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		raw := make([]byte, attach*3/4)
		for k := range raw {
			raw[k] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--" + boundary + "--\r\n")
	case rng.IntN(4) == 0:
		hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
		b.WriteString("\r\n--" + boundary + "\r\n")
		writeText(&b, text, zh)
		b.WriteString("\r\n--" + boundary + "\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeQP(&b, "<html><body><p>"+text+"</p></body></html>")
		b.WriteString("\r\n--" + boundary + "--\r\n")
	default:
		writeText(&b, text, zh)
	}
	return []byte(b.String())
}

func writeText(b *strings.Builder, text string, zh bool) {
	if zh {
		b.WriteString("Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeQP(b, text)
		return
	}
	b.WriteString("Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	for len(text) > 72 {
		cut := strings.LastIndexByte(text[:72], ' ')
		if cut <= 0 {
			cut = 72
		}
		b.WriteString(text[:cut] + "\r\n")
		text = strings.TrimLeft(text[cut:], " ")
	}
	b.WriteString(text + "\r\n")
}

func writeQP(b *strings.Builder, text string) {
	var sb strings.Builder
	w := quotedprintable.NewWriter(&sb)
	w.Write([]byte(text))
	w.Close()
	// quotedprintable writes CRLF soft breaks already; normalize any bare LF.
	s := strings.ReplaceAll(strings.ReplaceAll(sb.String(), "\r\n", "\n"), "\n", "\r\n")
	b.WriteString(s + "\r\n")
}

func paragraph(rng *rand.Rand, size int, zh bool) string {
	var b strings.Builder
	for b.Len() < size {
		if zh {
			for k := 0; k < 20; k++ {
				b.WriteRune(wordsZH[rng.IntN(len(wordsZH))])
			}
			b.WriteString("。")
		} else {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
	}
	return b.String()
}
