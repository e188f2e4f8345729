package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/banjia-mail/banjia/mail"
	"github.com/banjia-mail/banjia/sources/check"
	"github.com/banjia-mail/banjia/sources/ews"
	"github.com/banjia-mail/banjia/sources/exchange"
	"github.com/banjia-mail/banjia/sources/presets"
)

// The new-job form for an Exchange Web Services source, as the seed's
// EXCHANGE协议邮箱 asks for it: the EWS address (the source field), the EWS
// domain, the Exchange version (2010 SP2 unless the admin picks another)
// and how the login may be written; for Exchange Online the application
// (tenant, client id, client secret) in the delegated fields. Like the
// modes, the EWS form is chosen by a link (?protocol=ews), not by script.

// ewsSettings are the request's EWS fields, checked and applied by the same
// code as the CLI's --ews-* flags.
func (req *JobRequest) ewsSettings() ews.Settings {
	return ews.Settings{Version: req.EWSVersion, Domain: req.EWSDomain, Auth: req.EWSAuth}
}

// applyEWS writes the request's EWS fields into src. The form sends the
// version's default with every EWS page, so an empty domain and login
// method and the default version are no settings at all.
func (req *JobRequest) applyEWS(src *mail.Endpoint) error {
	s := req.ewsSettings()
	if src.Scheme != "ews" && strings.TrimSpace(s.Domain+s.Auth) == "" {
		return nil
	}
	return s.Apply(src)
}

// ewsForm fills the EWS page's defaults from the query: the version the
// seed suggests, and an Exchange Online preset's app-only login.
func ewsForm(r *http.Request, req *JobRequest) {
	if r.URL.Query().Get("protocol") != "ews" {
		return
	}
	req.Protocol = "ews"
	if req.EWSVersion == "" {
		req.EWSVersion = presets.EWSVersion
	}
	if p := r.URL.Query().Get("provider"); p != "" {
		if pr, ok := presets.Providers[p]; ok && pr.EWS.Port != 0 {
			req.Provider = p
			if pr.EWSOAuth {
				req.AdminLogin = "xoauth2"
			}
		}
	}
}

// newJobView is the new-job form's data, EWS choices included.
func (s *Server) newJobView(req JobRequest, rep *check.Report) newJobView {
	return newJobView{Providers: s.providers(), Modes: jobModes, Req: req, Check: rep, EWSVersions: ews.Versions, EWSPresets: ewsPresets()}
}

// appCertificate reads the form's application certificate (the PEM of the
// certificate and its private key), which stands for the client secret of
// an app-only job (EWS or IMAP XOAUTH2).
func appCertificate(r *http.Request, req *JobRequest) error {
	if r.MultipartForm == nil {
		return nil
	}
	f, hdr, err := r.FormFile("app_certificate")
	if errors.Is(err, http.ErrMissingFile) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("application certificate: %w", err)
	}
	defer f.Close()
	if hdr.Size == 0 {
		return nil
	}
	if req.SourceAdminPassword != "" {
		return errors.New("give the application's client secret or its certificate, not both")
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return fmt.Errorf("application certificate: %w", err)
	}
	if !exchange.IsCertificate(string(data)) || !strings.Contains(string(data), "PRIVATE KEY-----") {
		return fmt.Errorf("application certificate %s: want a PEM file with the certificate and its unencrypted private key", filepath.Base(hdr.Filename))
	}
	req.SourceAdminPassword = string(data)
	return nil
}

// ewsPresets are the providers the EWS page offers.
func ewsPresets() []presets.Provider {
	var out []presets.Provider
	for _, n := range presets.ProviderNames() {
		if p := presets.Providers[n]; p.EWS.Port != 0 {
			out = append(out, p)
		}
	}
	return out
}

func init() {
	for lang, ws := range map[string]map[string]string{
		"en": {
			"ews.form":       "Exchange (EWS)",
			"imap.form":      "IMAP / POP3",
			"ews.fields":     "Exchange Web Services (EXCHANGE协议邮箱)",
			"ews.source":     "EWS address (e.g. https://mail.example.com/EWS/Exchange.asmx)",
			"ews.domain":     "EWS domain (optional: the Windows domain of bare login names)",
			"ews.version":    "Exchange version (usually Exchange 2010)",
			"ews.auth":       "Login method",
			"ews.auth.":      "what the server offers (NTLM first)",
			"ews.auth.ntlm":  "NTLM",
			"ews.auth.basic": "Basic",
			"ews.login":      "Login names: a name (alice), DOMAIN\\name (CONTOSO\\alice) or the address (alice@example.com).",
			"ews.online":     "Exchange Online: choose the app-only token below and give the application's tenant, client id and client secret; the tenant's admin grants it full_access_as_app (or an RBAC for Applications role assignment).",
			"authority":      "Authority (optional: other than https://login.microsoftonline.com/)",
			"app.cert":       "Or the application's certificate (PEM with its private key), instead of the client secret",
		},
		"zh": {
			"ews.form":       "Exchange (EWS)",
			"imap.form":      "IMAP / POP3",
			"ews.fields":     "EXCHANGE协议邮箱 (EWS)",
			"ews.source":     "Exchange服务器: EWS接口地址 (例如 https://mail.example.com/EWS/Exchange.asmx)",
			"ews.domain":     "ews_domain: 域名 (非必填)",
			"ews.version":    "exchange接收协议版本 (一般是用2010)",
			"ews.auth":       "登录方式",
			"ews.auth.":      "服务器提供的方式 (先 NTLM)",
			"ews.auth.ntlm":  "NTLM",
			"ews.auth.basic": "Basic",
			"ews.login":      "邮箱登录名: 一般是登录名, 也可以是 域名\\登录名 的形式, 也可以是邮箱地址的形式。",
			"ews.online":     "Exchange Online: 在下方选择应用令牌, 填写应用的租户 ID、客户端 ID 和客户端密码; 租户管理员需授予 full_access_as_app (或 RBAC for Applications 角色分配)。",
			"authority":      "认证地址 (非必填: https://login.microsoftonline.com/ 以外的)",
			"app.cert":       "或应用的证书 (含私钥的 PEM 文件), 代替客户端密码",
		},
	} {
		for k, v := range ws {
			words[lang][k] = v
		}
	}
}
