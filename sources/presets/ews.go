package presets

import (
	"fmt"

	"github.com/banjia-mail/banjia/mail"
)

// Exchange Web Services presets: the seed's EXCHANGE协议邮箱 (on-premises
// Exchange, where IMAP is often off: EWS address, EWS domain, version
// "usually 2010", login as name, DOMAIN\name or address) and Exchange
// Online's EWS with an application's app-only token.

// EWSVersion is the version the seed's form defaults to ("一般是用2010"):
// Exchange 2010 SP2, which every Exchange from 2010 SP2 to 2019 and
// Exchange Online serve.
const EWSVersion = "Exchange2010_SP2"

func init() {
	Providers["exchange-ews"] = Provider{Name: "exchange-ews", Title: "Exchange (EWS) EXCHANGE协议邮箱",
		EWS: Server{"", 443, "implicit"}, EWSVersion: EWSVersion, SMTP: Server{"", 587, "starttls"},
		Hint: "give the EWS address (https://mail.example.com/EWS/Exchange.asmx), the EWS domain when logins are bare names, " +
			"and the version (usually Exchange2010_SP2); log in with a name, DOMAIN\\name or the address; a delegated job's admin " +
			"needs the ApplicationImpersonation role or FullAccess on each mailbox"}
	Providers["exchange-online-ews"] = Provider{Name: "exchange-online-ews", Title: "Exchange Online (EWS, app-only OAuth)",
		EWS: Server{"outlook.office365.com", 443, "implicit"}, EWSVersion: EWSVersion, EWSOAuth: true,
		SMTP: Server{"smtp.office365.com", 587, "starttls"},
		Hint: "a delegated job with an Entra ID application (tenant, client id, client secret): the tenant's admin grants it the " +
			"application permission full_access_as_app of Office 365 Exchange Online (admin consent), or an RBAC for Applications " +
			"role assignment of Application EWS.AccessAsApp scoped to the mailboxes; 21Vianet is ews://partner.outlook.cn, GCC High ews://outlook.office365.us"}
	Sourced["exchange-ews"] = "Exchange Server's EWS virtual directory (/EWS/Exchange.asmx on the Client Access server, HTTPS 443); the host is the admin's"
	Sourced["exchange-online-ews"] = "Microsoft's EWS endpoint for Exchange Online (https://outlook.office365.com/EWS/Exchange.asmx) and its app-only authentication guide"
}

// ewsEndpoint is the ews:// endpoint of an EWS preset.
func ewsEndpoint(p Provider, srv Server, user, host string) (mail.Endpoint, error) {
	if host != "" {
		srv.Host = host
	}
	if srv.Host == "" {
		return mail.Endpoint{}, fmt.Errorf("provider %q has no fixed server: give the EWS address, e.g. https://mail.example.com/EWS/Exchange.asmx", p.Name)
	}
	return mail.Endpoint{Scheme: "ews", Host: srv.Host, Port: srv.Port, User: user, Version: p.EWSVersion, Hint: p.Hint}, nil
}
