package migrate

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// ImportOptions say how an accounts file is read.
type ImportOptions struct {
	// Encoding of a CSV: "" detects (UTF-8 with or without BOM, UTF-16
	// with BOM, else GB18030, which reads GBK); or utf-8, gbk, gb18030.
	Encoding string
	// SkipBadRows imports the good rows of a file with bad ones; by
	// default nothing is imported until the file is clean.
	SkipBadRows bool
}

// maxBadRowsShown bounds the bad rows an error lists (the count is exact).
const maxBadRowsShown = 50

// ImportAccounts reads an accounts file: an Excel workbook (.xlsx, its
// first sheet) or a CSV, as admins save them (Excel in a Chinese locale
// saves CSV as GBK; "CSV UTF-8" starts with a BOM). Columns are old
// address, new address, old password, new password, old server (host or
// host:port, for a mailbox not on the job's old server), in that order, or
// in any order under a header row naming them in English or Chinese (旧邮箱,
// 新邮箱, 密码, 新密码, 旧服务器), where a 手机 (phone) column gives the
// member's mobile number for reminder texts; other headed columns (备注)
// are ignored.
// Blank rows and rows starting with '#' are skipped. Every bad row is
// reported with its line; errors never echo a password. skipped lists the
// bad rows left out under SkipBadRows.
func ImportAccounts(data []byte, opts ImportOptions) (rows []AccountRow, skipped []string, err error) {
	recs, bad, err := records(data, opts.Encoding)
	if err != nil {
		return nil, nil, err
	}
	cols, recs, err := columns(recs)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]int{}
	for _, r := range recs {
		row, err := cols.row(r)
		if err == nil {
			key := strings.ToLower(row.Old)
			if prev, ok := seen[key]; ok {
				err = fmt.Errorf("%s is already listed on line %d", row.Old, prev)
			} else {
				seen[key] = r.line
			}
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("line %d: %v", r.line, err))
			continue
		}
		rows = append(rows, row)
	}
	switch {
	case len(bad) > 0 && !opts.SkipBadRows:
		return nil, nil, badRows(bad)
	case len(rows) == 0 && len(bad) == 0:
		return nil, nil, errors.New("accounts file has no accounts")
	case len(rows) == 0:
		return nil, nil, badRows(bad)
	}
	return rows, bad, nil
}

func badRows(bad []string) error {
	if len(bad) == 1 {
		return fmt.Errorf("accounts file %s (nothing imported)", bad[0])
	}
	shown := bad[:min(len(bad), maxBadRowsShown)]
	msg := fmt.Sprintf("accounts file: %d bad rows, nothing imported:\n  %s", len(bad), strings.Join(shown, "\n  "))
	if len(bad) > len(shown) {
		msg += fmt.Sprintf("\n  and %d more", len(bad)-len(shown))
	}
	return errors.New(msg)
}

// record is one row of an accounts file, with its line (or sheet row).
type record struct {
	line  int
	cells []string
}

// records reads the rows of a workbook or a CSV; bad lists CSV lines that
// cannot be read at all.
func records(data []byte, enc string) (recs []record, bad []string, err error) {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		recs, err := sheet(data)
		return recs, nil, err
	}
	text, err := decode(data, enc)
	if err != nil {
		return nil, nil, err
	}
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) || len(bad) > 10*maxBadRowsShown {
				return nil, nil, fmt.Errorf("accounts file: %w", err)
			}
			bad = append(bad, fmt.Sprintf("line %d: %v", pe.Line, pe.Err))
			continue
		}
		line, _ := cr.FieldPos(0)
		recs = append(recs, record{line: line, cells: rec})
	}
	return recs, bad, nil
}

// sheet reads the first sheet of an Excel workbook.
func sheet(data []byte) ([]record, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("accounts file: not a workbook Excel can open (save it as .xlsx or CSV): %v", err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		return nil, errors.New("accounts file: the workbook has no sheet")
	}
	rows, err := f.GetRows(sheets[0])
	if err != nil {
		return nil, fmt.Errorf("accounts file: sheet %q: %v", sheets[0], err)
	}
	var recs []record
	for i, r := range rows {
		if len(r) > 0 && strings.HasPrefix(strings.TrimSpace(r[0]), "#") {
			continue
		}
		recs = append(recs, record{line: i + 1, cells: r})
	}
	return recs, nil
}

// decode turns a CSV's bytes into text.
func decode(data []byte, enc string) (string, error) {
	var e encoding.Encoding
	switch strings.ToLower(strings.ReplaceAll(enc, "-", "")) {
	case "":
		switch {
		case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
			return string(data[3:]), nil
		case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
			e = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
		case utf8.Valid(data):
			return string(data), nil
		default:
			e = simplifiedchinese.GB18030
		}
	case "utf8":
		if !utf8.Valid(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})) {
			return "", errors.New("accounts file: not valid UTF-8 (saved by Excel in a Chinese locale? leave the encoding out, or give gbk)")
		}
		return string(bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})), nil
	case "gbk", "gb2312", "gb18030":
		e = simplifiedchinese.GB18030
	case "utf16":
		e = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
	default:
		return "", fmt.Errorf("encoding %q: want utf-8, gbk, gb18030 or utf-16 (or leave it out to detect)", enc)
	}
	out, err := e.NewDecoder().Bytes(data)
	if err != nil {
		return "", fmt.Errorf("accounts file: cannot read it as %s: %v", enc, err)
	}
	return string(out), nil
}

// Column roles, in the order of a file without a header.
const (
	colOld = iota
	colNew
	colOldPassword
	colNewPassword
	colServer
	colPhone // by header only: for the reminder texts (提醒短信)
	nCols
)

// headerNames are what admins head the columns with, lowercased, without
// spaces, '_' or '-'.
var headerNames = map[string]int{
	"old": colOld, "oldaddress": colOld, "oldemail": colOld, "oldmail": colOld, "source": colOld, "sourceaddress": colOld,
	"email": colOld, "address": colOld, "mailbox": colOld, "旧邮箱": colOld, "原邮箱": colOld, "旧账号": colOld, "原账号": colOld,
	"旧邮箱地址": colOld, "源邮箱": colOld, "邮箱": colOld, "邮箱地址": colOld, "邮箱账号": colOld,
	"new": colNew, "newaddress": colNew, "newemail": colNew, "newmail": colNew, "target": colNew, "targetaddress": colNew,
	"新邮箱": colNew, "新账号": colNew, "新邮箱地址": colNew, "目标邮箱": colNew,
	"password": colOldPassword, "oldpassword": colOldPassword, "sourcepassword": colOldPassword, "密码": colOldPassword,
	"旧密码": colOldPassword, "原密码": colOldPassword, "旧邮箱密码": colOldPassword, "邮箱密码": colOldPassword,
	"newpassword": colNewPassword, "targetpassword": colNewPassword, "新密码": colNewPassword, "新邮箱密码": colNewPassword,
	"server": colServer, "oldserver": colServer, "host": colServer, "oldhost": colServer, "服务器": colServer, "旧服务器": colServer,
	"phone": colPhone, "mobile": colPhone, "手机": colPhone, "手机号": colPhone, "手机号码": colPhone, "电话": colPhone,
}

func headerName(s string) (int, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer(" ", "", "_", "", "-", "", "\\u3000", "").Replace(s)
	c, ok := headerNames[s]
	return c, ok
}

// layout is where each role's column is (-1: absent).
type layout struct {
	at      [nCols]int
	headed  bool
	maxCols int
}

// columns finds the layout: from a header row (which it drops), or by
// position.
func columns(recs []record) (layout, []record, error) {
	var l layout
	for i := range l.at {
		l.at[i] = i
	}
	l.maxCols = colServer + 1
	first := -1
	for i, r := range recs {
		if !blank(r.cells) {
			first = i
			break
		}
	}
	if first < 0 || strings.Contains(recs[first].cells[0], "@") {
		return l, recs, nil
	}
	var at [nCols]int
	for i := range at {
		at[i] = -1
	}
	known := 0
	for i, c := range recs[first].cells {
		if role, ok := headerName(c); ok && at[role] < 0 {
			at[role] = i
			known++
		}
	}
	if known == 0 {
		// Not a header: the first row's own errors say what is wrong.
		return l, recs, nil
	}
	line := recs[first].line
	switch {
	case at[colOld] < 0:
		return l, nil, fmt.Errorf("accounts file line %d: the header names no old address column (old address, 旧邮箱)", line)
	case at[colNew] < 0:
		return l, nil, fmt.Errorf("accounts file line %d: the header names no new address column (new address, 新邮箱)", line)
	}
	return layout{at: at, headed: true}, recs[first+1:], nil
}

func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

// row reads one record by the layout; a blank record is an error the
// caller never sees (records skips them).
func (l layout) row(r record) (AccountRow, error) {
	cells := make([]string, len(r.cells))
	for i, c := range r.cells {
		cells[i] = strings.TrimSpace(c)
	}
	// Spreadsheets pad rows with empty cells; they are not columns.
	for len(cells) > 0 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	if !l.headed && (len(cells) < 2 || len(cells) > l.maxCols) {
		return AccountRow{}, fmt.Errorf("want old address, new address, old password[, new password[, old server]]; got %d columns", len(cells))
	}
	get := func(role int) string {
		if i := l.at[role]; i >= 0 && i < len(cells) {
			return cells[i]
		}
		return ""
	}
	row := AccountRow{Line: r.line, Old: get(colOld), New: get(colNew), OldPassword: get(colOldPassword), NewPassword: get(colNewPassword)}
	for _, a := range []struct{ name, v string }{{"old address", row.Old}, {"new address", row.New}} {
		if err := checkAddress(a.v); err != nil {
			return AccountRow{}, fmt.Errorf("%s %v", a.name, err)
		}
	}
	if s := get(colServer); s != "" {
		if err := checkServer(s); err != nil {
			return AccountRow{}, fmt.Errorf("old server %v", err)
		}
		row.Server = s
	}
	if p := get(colPhone); p != "" {
		if err := checkPhone(p); err != nil {
			return AccountRow{}, err
		}
		row.Phone = p
	}
	return row, nil
}

// checkPhone accepts what people write for a mobile number: digits, with
// +, spaces, dashes and brackets between them.
func checkPhone(p string) error {
	digits := 0
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune("+ -()", r):
		default:
			return fmt.Errorf("phone %q: want a number such as +86 138 0013 8000", p)
		}
	}
	if digits < 5 || digits > 20 {
		return fmt.Errorf("phone %q: want a number such as +86 138 0013 8000", p)
	}
	return nil
}
