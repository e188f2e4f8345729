package web_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/banjia-mail/banjia/migrate"
)

// xlsx is an Excel workbook of rows (the first the header).
func xlsx(t *testing.T, rows [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	sh := f.GetSheetName(0)
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

// postFile posts a multipart form with one file, as a browser sends the
// dashboard's forms.
func (c *client) postFile(path string, form url.Values, field, name string, data []byte) (int, string) {
	c.s.t.Helper()
	if form.Get("csrf") == "" {
		form.Set("csrf", c.csrf)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range form {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile(field, name)
	if err != nil {
		c.s.t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	req, _ := http.NewRequest("POST", c.s.http.URL+path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

// TestUploadAccountsFile: the new-job form takes an .xlsx saved by Excel
// (Chinese header, columns in another order, a notes column) and makes
// the job with its accounts; the job page's add form takes a GBK CSV; a
// file with bad rows names them and adds nothing; the template the
// dashboard offers imports as it is.
func TestUploadAccountsFile(t *testing.T) {
	s := newSite(t, siteOptions{accounts: 3, messages: 2})
	admin := s.client("en")
	admin.get("/admin/login")
	admin.post("/admin/login", url.Values{"user": {"admin"}, "password": {adminPW}})
	if code, body := admin.get("/admin/jobs/new?mode=passwords"); code != 200 || !strings.Contains(body, `name="accounts_file"`) ||
		!strings.Contains(body, `enctype="multipart/form-data"`) || !strings.Contains(body, "/admin/accounts-template.csv") {
		t.Fatalf("new job form: %d, no file field or template link:\n%s", code, body)
	}

	rows := [][]any{{"备注", "新邮箱", "旧邮箱", "密码", "新密码"}}
	for _, u := range s.w.Users[:2] {
		rows = append(rows, []any{"note", u.New, u.Old, u.OldPW, u.NewPW})
	}
	form := url.Values{"id": {"up"}, "mode": {"passwords"}, "source": {s.endpointURL(s.w.Src.IMAPAddr)},
		"target": {s.endpointURL(s.w.Dst.IMAPAddr)}, "period": {"all"}}
	code, body := admin.postFile("/admin/jobs", form, "accounts_file", "accounts.xlsx", xlsx(t, rows))
	if code != 200 || !strings.Contains(body, "up") {
		t.Fatalf("create from .xlsx: %d\n%s", code, body)
	}
	for _, u := range s.w.Users[:2] {
		a := s.waitAccount("up", u.Old, "succeeded", time.Minute)
		if a.Target != u.New || a.Counts.Imported != 2 {
			t.Errorf("%s: target %s, %d imported; want %s, 2", u.Old, a.Target, a.Counts.Imported, u.New)
		}
	}
	if n := len(s.accounts("up")); n != 2 {
		t.Fatalf("job up has %d accounts, want the file's 2", n)
	}

	// A GBK CSV (Excel's CSV in a Chinese locale) through the add form.
	u := s.w.Users[2]
	gbk := append([]byte{0xbe, 0xc9, 0xd3, 0xca, 0xcf, 0xe4, ',', 0xd0, 0xc2, 0xd3, 0xca, 0xcf, 0xe4, ',', 0xc3, 0xdc, 0xc2, 0xeb, ',', 0xd0, 0xc2, 0xc3, 0xdc, 0xc2, 0xeb, '\r', '\n'}, // 旧邮箱,新邮箱,密码,新密码 in GBK
		[]byte(u.Old+","+u.New+","+u.OldPW+","+u.NewPW+"\r\n")...)
	admin.get("/admin/jobs/up")
	if _, page := admin.postFile("/admin/jobs/up/accounts", url.Values{}, "accounts_file", "more.csv", gbk); !strings.Contains(page, "1 accounts added") {
		t.Errorf("the GBK file: the job page does not say 1 account was added")
	}
	s.waitAccount("up", u.Old, "succeeded", time.Minute)

	// Bad rows: every line named, nothing added.
	bad := "旧邮箱,新邮箱,密码\nx y@old.test,x@new.test,pw\nz@old.test,z z@new.test,pw\nq@old.test,,pw\n"
	admin.get("/admin/jobs/up")
	// The answer is the job page the form returns to, with the error.
	_, page := admin.postFile("/admin/jobs/up/accounts", url.Values{}, "accounts_file", "bad.csv", []byte(bad))
	for _, line := range []string{"line 2", "line 3", "line 4"} {
		if !strings.Contains(page, line) {
			t.Errorf("the job page does not name %s of the bad file:\n%s", line, page)
		}
	}
	if n := len(s.accounts("up")); n != 3 {
		t.Errorf("job up has %d accounts after a bad file, want 3", n)
	}

	// A file and pasted text together are refused.
	admin.get("/admin/jobs/new?mode=passwords")
	form.Set("id", "both")
	form.Set("accounts", u.Old+","+u.New+","+u.OldPW+","+u.NewPW)
	if code, body := admin.postFile("/admin/jobs", form, "accounts_file", "accounts.xlsx", xlsx(t, rows)); code != 400 || !strings.Contains(body, "not both") {
		t.Errorf("file and text together: %d, want 400 saying not both", code)
	}

	// The template: a CSV with a BOM and the Chinese header, which imports.
	code, hd, tmpl := admin.download("/admin/accounts-template.csv")
	if code != 200 || hd.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.HasPrefix(hd.Get("Content-Disposition"), "attachment;") {
		t.Fatalf("template: %d %v", code, hd)
	}
	if !strings.HasPrefix(tmpl, "\ufeff旧邮箱,新邮箱,密码,新密码,旧服务器") {
		t.Errorf("template starts %q", tmpl[:min(len(tmpl), 60)])
	}
	got, _, err := migrate.ImportAccounts([]byte(tmpl), migrate.ImportOptions{})
	if err != nil || len(got) != 1 || !strings.Contains(got[0].Old, "@") {
		t.Errorf("the template does not import: %v %+v", err, got)
	}
	s.noSecrets()
}
