// Package presets holds the known mail providers' servers (QQ, 163, Exmail,
// Gmail, Outlook...) so an admin can name a provider instead of its hosts,
// and turns a provider or a URL into an Endpoint.
package presets

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/banjia-mail/banjia/mail"
)

// Server is one protocol's address at a provider.
type Server struct {
	Host string
	Port int
	// TLS is "implicit" (TLS from the first byte) or "starttls".
	TLS string
}

// Provider is a preset: where a mail provider's servers are and what its
// users must know to log in.
type Provider struct {
	Name, Title string
	IMAP, POP3  Server
	// SMTP and SMTPOrg (organisation accounts, when they differ) are for
	// notifications.
	SMTP, SMTPOrg Server
	// AuthCode: the provider wants an authorization code (授权码) or app
	// password for IMAP/POP3, not the web login password.
	AuthCode bool
	// Hint is what a member must do when login fails.
	Hint string
	// EWS is the Exchange Web Services server of Exchange presets (its
	// host the admin's on premises), with the version asked for and
	// whether the login is an application's token (Exchange Online); see
	// ews.go. IMAP and POP3 are then empty when the preset is for
	// Exchange with IMAP off.
	EWS        Server `json:",omitempty"`
	EWSVersion string `json:",omitempty"`
	EWSOAuth   bool   `json:",omitempty"`
}

// Providers are the presets, by name. IMAP over TLS is 993 and POP3 over TLS
// is 995 everywhere (a widely copied provider FAQ says "imap.qq.com SSL 995": a slip).
var Providers = map[string]Provider{
	"exmail": {Name: "exmail", Title: "Tencent Exmail 腾讯企业邮",
		IMAP: Server{"imap.exmail.qq.com", 993, "implicit"}, POP3: Server{"pop.exmail.qq.com", 995, "implicit"},
		SMTP: Server{"smtp.exmail.qq.com", 465, "implicit"},
		Hint: "if secure login (安全登录) is on, use the client-specific password (客户端专用密码); IMAP/POP must be enabled in the mailbox settings"},
	"exmail-overseas": {Name: "exmail-overseas", Title: "Tencent Exmail overseas 腾讯企业邮 (海外)",
		IMAP: Server{"hwimap.exmail.qq.com", 993, "implicit"}, POP3: Server{"hwpop.exmail.qq.com", 995, "implicit"},
		SMTP: Server{"hwsmtp.exmail.qq.com", 465, "implicit"},
		Hint: "if secure login (安全登录) is on, use the client-specific password (客户端专用密码)"},
	"qq": {Name: "qq", Title: "QQ Mail QQ邮箱",
		IMAP: Server{"imap.qq.com", 993, "implicit"}, POP3: Server{"pop.qq.com", 995, "implicit"},
		SMTP: Server{"smtp.qq.com", 465, "implicit"}, AuthCode: true,
		Hint: "QQ Mail needs an authorization code (授权码), not the QQ password: Settings > Account > enable POP3/IMAP and generate one"},
	"163": {Name: "163", Title: "NetEase 163 网易163邮箱",
		IMAP: Server{"imap.163.com", 993, "implicit"}, POP3: Server{"pop.163.com", 995, "implicit"},
		SMTP: Server{"smtp.163.com", 465, "implicit"}, AuthCode: true,
		Hint: "163 needs an authorization code (授权码): Settings > POP3/SMTP/IMAP, enable the service and generate one (shown once)"},
	"126": {Name: "126", Title: "NetEase 126 网易126邮箱",
		IMAP: Server{"imap.126.com", 993, "implicit"}, POP3: Server{"pop.126.com", 995, "implicit"},
		SMTP: Server{"smtp.126.com", 465, "implicit"}, AuthCode: true,
		Hint: "126 needs an authorization code (授权码): Settings > POP3/SMTP/IMAP, enable the service and generate one (shown once)"},
	"sina": {Name: "sina", Title: "Sina Mail 新浪邮箱",
		IMAP: Server{"imap.sina.com", 993, "implicit"}, POP3: Server{"pop.sina.com", 995, "implicit"},
		SMTP: Server{"smtp.sina.com", 465, "implicit"}, AuthCode: true,
		Hint: "Sina needs the client authorization code (客户端授权码): Settings > client POP/IMAP/SMTP"},
	"outlook": {Name: "outlook", Title: "Outlook.com / Office 365",
		IMAP: Server{"outlook.office365.com", 993, "implicit"}, POP3: Server{"outlook.office365.com", 995, "implicit"},
		SMTP: Server{"smtp.office365.com", 587, "starttls"},
		Hint: "Exchange Online refuses password logins over IMAP/POP: migrate with the Microsoft Graph or delegated-admin (XOAUTH2) source instead"},
	"outlook-cn": {Name: "outlook-cn", Title: "Office 365 operated by 21Vianet 世纪互联",
		IMAP: Server{"partner.outlook.cn", 993, "implicit"}, POP3: Server{"partner.outlook.cn", 995, "implicit"},
		SMTP: Server{"smtp.partner.outlook.cn", 587, "starttls"},
		Hint: "migrate with the Microsoft Graph source (microsoftgraph.chinacloudapi.cn) or delegated-admin XOAUTH2; password logins over IMAP/POP are usually off"},
	"outlook-usgov": {Name: "outlook-usgov", Title: "Office 365 GCC High (US Government)",
		IMAP: Server{"outlook.office365.us", 993, "implicit"}, POP3: Server{"outlook.office365.us", 995, "implicit"},
		SMTP: Server{"smtp.office365.us", 587, "starttls"},
		Hint: "migrate with the Microsoft Graph source (graph.microsoft.us) or delegated-admin XOAUTH2; password logins over IMAP/POP are usually off"},
	"aliyun": {Name: "aliyun", Title: "Aliyun Mail 阿里邮箱",
		IMAP: Server{"imap.aliyun.com", 993, "implicit"}, POP3: Server{"pop3.aliyun.com", 995, "implicit"},
		SMTP: Server{"smtp.aliyun.com", 465, "implicit"},
		Hint: "enable POP/IMAP in the Aliyun mailbox settings; enterprise mailboxes use the aliyun-qiye preset"},
	"aliyun-qiye": {Name: "aliyun-qiye", Title: "Aliyun enterprise mail 阿里企业邮箱",
		IMAP: Server{"imap.qiye.aliyun.com", 993, "implicit"}, POP3: Server{"pop.qiye.aliyun.com", 995, "implicit"},
		SMTP: Server{"smtp.qiye.aliyun.com", 465, "implicit"},
		Hint: "the administrator must allow POP/IMAP for the member"},
	"zoho": {Name: "zoho", Title: "Zoho Mail",
		IMAP: Server{"imap.zoho.com", 993, "implicit"}, POP3: Server{"pop.zoho.com", 995, "implicit"},
		SMTP: Server{"smtp.zoho.com", 465, "implicit"}, SMTPOrg: Server{"smtppro.zoho.com", 465, "implicit"},
		Hint: "enable IMAP/POP access in Zoho's settings; with two-factor authentication use an application-specific password; organisation (own domain) mailboxes use imappro.zoho.com / poppro.zoho.com, and accounts outside the US data centre the host of theirs (imap.zoho.eu, imap.zoho.in, imap.zoho.com.au, imap.zoho.jp)"},
	"gmail": {Name: "gmail", Title: "Gmail / Google Workspace",
		IMAP: Server{"imap.gmail.com", 993, "implicit"}, POP3: Server{"pop.gmail.com", 995, "implicit"},
		SMTP: Server{"smtp.gmail.com", 465, "implicit"}, AuthCode: true,
		Hint: "Gmail needs an app password (two-step verification on) and IMAP enabled in Gmail's settings"},
	"exchange": {Name: "exchange", Title: "Exchange (on-premises)",
		IMAP: Server{"", 993, "implicit"}, POP3: Server{"", 995, "implicit"}, SMTP: Server{"", 587, "starttls"},
		Hint: "the Exchange IMAP4/POP3 services must be running and enabled for the mailbox (Set-CASMailbox -ImapEnabled $true)"},
	"other": {Name: "other", Title: "Other 其他品牌",
		IMAP: Server{"", 993, "implicit"}, POP3: Server{"", 995, "implicit"}, SMTP: Server{"", 465, "implicit"},
		Hint: "ask the old provider whether IMAP or POP is enabled and which password clients use"},
}

// ProviderNames lists the presets in a stable order.
func ProviderNames() []string {
	var out []string
	for n := range Providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// FromProvider builds an endpoint from a preset: protocol is "imap" (default)
// or "pop3"; user may be empty; host overrides the preset's host (required
// for exchange and other).
func FromProvider(name, protocol, user, host string) (mail.Endpoint, error) {
	p, ok := Providers[strings.ToLower(name)]
	if !ok {
		return mail.Endpoint{}, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(ProviderNames(), ", "))
	}
	var srv Server
	switch strings.ToLower(protocol) {
	case "":
		srv, protocol = p.IMAP, "imap"
		if p.IMAP.Port == 0 && p.EWS.Port != 0 {
			srv, protocol = p.EWS, "ews"
		}
	case "imap":
		srv, protocol = p.IMAP, "imap"
	case "pop3", "pop":
		srv, protocol = p.POP3, "pop3"
	case "ews":
		srv, protocol = p.EWS, "ews"
	default:
		return mail.Endpoint{}, fmt.Errorf("protocol %q: want imap, pop3 or ews", protocol)
	}
	if srv.Port == 0 {
		return mail.Endpoint{}, fmt.Errorf("provider %q has no %s preset: %s", p.Name, strings.ToUpper(protocol), p.Hint)
	}
	if protocol == "ews" {
		return ewsEndpoint(p, srv, user, host)
	}
	if host != "" {
		srv.Host = host
	}
	if srv.Host == "" {
		return mail.Endpoint{}, fmt.Errorf("provider %q has no fixed server: give the host name", p.Name)
	}
	scheme := protocol + "s"
	if srv.TLS == "starttls" {
		scheme = protocol
	}
	e := mail.Endpoint{Scheme: scheme, Host: srv.Host, Port: srv.Port, User: user, Hint: p.Hint}
	if p.AuthCode {
		e.Hint = "this provider wants an authorization code (授权码) or app password, not the login password: " + p.Hint
	}
	return e, nil
}

// ResolveEndpoint reads --from/--to style input: a URL, or with a provider
// preset just a user (alice@qq.com) or a URL that overrides the preset's host.
func ResolveEndpoint(raw, provider, protocol string) (mail.Endpoint, error) {
	if provider == "" {
		return mail.ParseEndpoint(raw)
	}
	if strings.Contains(raw, "://") {
		e, err := mail.ParseEndpoint(raw)
		if err != nil {
			return e, err
		}
		protocol := strings.TrimSuffix(strings.TrimSuffix(e.Scheme, "+plain"), "s")
		if e.Scheme == "ews" {
			protocol = "ews"
		}
		p, err := FromProvider(provider, protocol, e.User, e.Host)
		if err != nil {
			return e, err
		}
		e.Hint = p.Hint
		if e.Version == "" {
			e.Version = p.Version
		}
		return e, nil
	}
	user, err := url.PathUnescape(raw)
	if err != nil {
		user = raw
	}
	return FromProvider(provider, protocol, user, "")
}
