package migrate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
)

// fiveAccounts is what every file below holds.
var fiveAccounts = []AccountRow{
	{Old: "zhang.wei@old.example", New: "zhang.wei@new.example", OldPassword: "密码一1"},
	{Old: "li.na@old.example", New: "li.na@new.example", OldPassword: "p,w\"2", NewPassword: "np2"},
	{Old: "wang.fang@old.example", New: "wang.fang@new.example", OldPassword: "000123"},
	{Old: "liu.yang@old.example", New: "liu.yang@new.example", OldPassword: "pw4", Server: "mail2.old.example:993"},
	{Old: "chen.jing@old.example", New: "chen.jing@new.example", OldPassword: "pw 5"},
}

const fiveCSV = "旧邮箱,新邮箱,密码,新密码,旧服务器\n" +
	"zhang.wei@old.example,zhang.wei@new.example,密码一1\n" +
	"li.na@old.example,li.na@new.example,\"p,w\"\"2\",np2\n" +
	"# a comment\n" +
	"wang.fang@old.example,wang.fang@new.example,000123,,\n" +
	"liu.yang@old.example,liu.yang@new.example,pw4,,mail2.old.example:993\n" +
	"\n" +
	"chen.jing@old.example,chen.jing@new.example,pw 5\n"

// TestImportFormats: the same five accounts saved as an admin's tools save
// them (UTF-8 with and without BOM, GBK, UTF-16, .xlsx with its columns in
// another order and a notes column) import identically.
func TestImportFormats(t *testing.T) {
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(fiveCSV)
	if err != nil {
		t.Fatal(err)
	}
	utf16, err := unicode.UTF16(unicode.LittleEndian, unicode.UseBOM).NewEncoder().String(fiveCSV)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"UTF-8":        []byte(fiveCSV),
		"UTF-8 BOM":    append([]byte{0xEF, 0xBB, 0xBF}, fiveCSV...),
		"GBK":          []byte(gbk),
		"UTF-16":       []byte(utf16),
		"xlsx":         workbook(t),
		"no header":    []byte(fiveCSV[strings.Index(fiveCSV, "\n")+1:]),
		"English head": []byte("Old address,New address,Old password,New password,Old server\n" + fiveCSV[strings.Index(fiveCSV, "\n")+1:]),
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			rows, skipped, err := ImportAccounts(data, ImportOptions{})
			if err != nil || len(skipped) != 0 {
				t.Fatalf("%v %v", err, skipped)
			}
			if len(rows) != len(fiveAccounts) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(fiveAccounts), rows)
			}
			for i, r := range rows {
				r.Line = 0
				if r != fiveAccounts[i] {
					t.Errorf("row %d: %+v, want %+v", i, r, fiveAccounts[i])
				}
			}
		})
	}
	if _, _, err := ImportAccounts([]byte(gbk), ImportOptions{Encoding: "utf-8"}); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Errorf("GBK read as UTF-8: %v", err)
	}
	if rows, _, err := ImportAccounts([]byte(gbk), ImportOptions{Encoding: "GBK"}); err != nil || len(rows) != 5 {
		t.Errorf("GBK named: %d rows, %v", len(rows), err)
	}
	if _, _, err := ImportAccounts([]byte(fiveCSV), ImportOptions{Encoding: "latin-9"}); err == nil || !strings.Contains(err.Error(), `encoding "latin-9": want utf-8, gbk, gb18030 or utf-16`) {
		t.Errorf("unknown encoding: %v", err)
	}
}

// workbook is the five accounts as an .xlsx whose columns are in another
// order, with a notes column, and whose passwords are typed as text.
func workbook(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sh := f.GetSheetName(0)
	rows := [][]any{{"备注", "新邮箱", "旧邮箱", "旧服务器", "密码", "新密码"}}
	for i, a := range fiveAccounts {
		rows = append(rows, []any{"第" + string(rune('一'+i)) + "位", a.New, a.Old, a.Server, a.OldPassword, a.NewPassword})
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow(sh, cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportBadRows: a file with three bad rows names all three lines and
// imports nothing; with SkipBadRows the good rows come in and the bad ones
// are listed.
func TestImportBadRows(t *testing.T) {
	file := "old,new,password\n" +
		"a@old.example,a@new.example,pw\n" +
		"b c@old.example,b@new.example,pw\n" + // line 3: a space
		"d@old.example,,pw\n" + // line 4: no new address
		"e@old.example,e@new.example,pw\n" +
		"A@old.example,x@new.example,pw\n" // line 6: listed on line 2
	_, _, err := ImportAccounts([]byte(file), ImportOptions{})
	if err == nil {
		t.Fatal("a file with bad rows was imported")
	}
	for _, want := range []string{"3 bad rows, nothing imported", "line 3: old address \"b c@old.example\" contains a space", "line 4: new address is empty", "line 6: A@old.example is already listed on line 2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "pw") {
		t.Errorf("the error shows a password: %q", err)
	}
	rows, skipped, err := ImportAccounts([]byte(file), ImportOptions{SkipBadRows: true})
	if err != nil || len(rows) != 2 || len(skipped) != 3 {
		t.Fatalf("skip bad rows: %d rows, skipped %q, %v", len(rows), skipped, err)
	}
	if _, _, err := ImportAccounts([]byte("新邮箱,密码\nx@new.example,pw\n"), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "line 1: the header names no old address column") {
		t.Errorf("header without the old address: %v", err)
	}
	if _, _, err := ImportAccounts([]byte("PK\x03\x04 not really"), ImportOptions{}); err == nil || !strings.Contains(err.Error(), "not a workbook Excel can open") {
		t.Errorf("a broken workbook: %v", err)
	}
}

// TestImportPhoneColumn: a headed phone column gives each member's mobile
// number; a number that is not one is a bad row.
func TestImportPhoneColumn(t *testing.T) {
	rows, _, err := ImportAccounts([]byte("旧邮箱,新邮箱,密码,手机号\na@old.example,a@new.example,pw,+86 138-0013-8000\nb@old.example,b@new.example,pw,\n"), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Phone != "+86 138-0013-8000" || rows[1].Phone != "" {
		t.Errorf("phones %q %q", rows[0].Phone, rows[1].Phone)
	}
	_, _, err = ImportAccounts([]byte("old,new,password,mobile\na@old.example,a@new.example,pw,call me\n"), ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "phone") {
		t.Errorf("a bad phone: %v", err)
	}
}
