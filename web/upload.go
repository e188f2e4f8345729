package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/banjia-mail/banjia/migrate"
)

// Accounts files uploaded through the dashboard's forms (new job, add
// accounts): a CSV as Excel saves it (UTF-8 with or without BOM, GBK,
// UTF-16) or the .xlsx itself, read by migrate.ImportAccounts as banjia job
// create reads --accounts. A file and pasted text together are refused:
// which one was meant cannot be guessed.

// uploadField is the file input's name in both forms.
const uploadField = "accounts_file"

// uploadedAccounts reads the form's accounts file; nil rows and no error
// when none was sent.
func uploadedAccounts(r *http.Request) ([]migrate.AccountRow, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	f, hdr, err := r.FormFile(uploadField)
	if errors.Is(err, http.ErrMissingFile) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	defer f.Close()
	if hdr.Size == 0 {
		// A form sent without choosing a file has an empty part.
		return nil, nil
	}
	if strings.TrimSpace(r.PostFormValue("accounts")) != "" {
		return nil, errors.New("give the accounts as a file or as pasted text, not both")
	}
	switch ext := strings.ToLower(filepath.Ext(hdr.Filename)); ext {
	case ".csv", ".txt", ".xlsx":
	default:
		return nil, fmt.Errorf("accounts file %s: want a .csv or .xlsx file (Excel: Save As > CSV or Excel Workbook)", filepath.Base(hdr.Filename))
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("accounts file: %w", err)
	}
	rows, _, err := migrate.ImportAccounts(data, migrate.ImportOptions{Encoding: r.PostFormValue("encoding")})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(hdr.Filename), err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s lists no accounts", filepath.Base(hdr.Filename))
	}
	return rows, nil
}

// accountsTemplate is the file the dashboard offers to fill in: the
// Chinese header the import recognises and one example row, with a BOM so
// Excel opens it as UTF-8.
var accountsTemplate = "\ufeff旧邮箱,新邮箱,密码,新密码,旧服务器\r\n" +
	"zhang.san@old.example.com,zhang.san@new.example.com,old-password-or-authorization-code,,\r\n"

// templateCSV serves the accounts template (GET /admin/accounts-template.csv).
func (s *Server) templateCSV(w http.ResponseWriter, r *http.Request, _ *session) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="banjia-accounts.csv"`)
	io.Copy(w, bytes.NewReader([]byte(accountsTemplate)))
}
