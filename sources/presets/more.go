package presets

// Presets added for the seed's brands 263 企业邮箱 and 网易企业邮
// (qiye.163.com), each with where its values come from: banjia providers
// prints it, so an admin knows what to check when a host does not answer.

// Sourced says where a preset's hosts and ports come from.
var Sourced = map[string]string{
	"263": "263 企业邮箱's client settings as 263 publishes them for mail clients (IMAP imap.263.net 993 SSL, " +
		"POP3 pop.263.net 995 SSL, SMTP smtp.263.net 465 SSL); not re-checked against 263's site when this preset was written",
	"qiye163": "网易企业邮 (NetEase enterprise mail) client settings as NetEase publishes them for the Hangzhou hosts " +
		"(imaphz.qiye.163.com 993, pophz.qiye.163.com 995, smtphz.qiye.163.com 465, all SSL); older guides name " +
		"imap.qiye.163.com, pop3.qiye.163.com and smtp.qiye.163.com instead (give --from with the host to use them); not re-checked against " +
		"NetEase's site when this preset was written",
	"exmail":          "Tencent Exmail's client settings help (腾讯企业邮 客户端设置)",
	"exmail-overseas": "Tencent Exmail's client settings help for overseas hosts",
	"qq":              "QQ Mail's help on POP3/IMAP/SMTP (QQ邮箱帮助中心)",
	"163":             "NetEase 163's POP3/SMTP/IMAP settings page (设置 > POP3/SMTP/IMAP)",
	"126":             "NetEase 126's POP3/SMTP/IMAP settings page (设置 > POP3/SMTP/IMAP)",
	"sina":            "Sina Mail's client settings page (客户端 POP/IMAP/SMTP)",
	"outlook":         "Microsoft's POP, IMAP and SMTP settings for Outlook.com and Microsoft 365",
	"outlook-cn":      "Microsoft's endpoints for Office 365 operated by 21Vianet (partner.outlook.cn)",
	"outlook-usgov":   "Microsoft's endpoints for Office 365 GCC High (outlook.office365.us)",
	"aliyun":          "Aliyun Mail's client settings help",
	"aliyun-qiye":     "Aliyun enterprise mail's client settings help (阿里企业邮箱 客户端设置)",
	"zoho":            "Zoho Mail's IMAP, POP and SMTP server details",
	"gmail":           "Google's Gmail IMAP and SMTP settings",
	"exchange":        "the IMAP4/POP3 defaults of Exchange Server; the host is the admin's",
	"other":           "the IANA ports for IMAP over TLS (993), POP3 over TLS (995) and submission over TLS (465); the host is the admin's",
}

func init() {
	Providers["263"] = Provider{Name: "263", Title: "263 Enterprise Mail 263企业邮箱",
		IMAP: Server{"imap.263.net", 993, "implicit"}, POP3: Server{"pop.263.net", 995, "implicit"},
		SMTP: Server{"smtp.263.net", 465, "implicit"},
		Hint: "the administrator must allow POP3/IMAP for the member in 263's console; log in with the full address"}
	Providers["qiye163"] = Provider{Name: "qiye163", Title: "NetEase Enterprise Mail 网易企业邮",
		IMAP: Server{"imaphz.qiye.163.com", 993, "implicit"}, POP3: Server{"pophz.qiye.163.com", 995, "implicit"},
		SMTP: Server{"smtphz.qiye.163.com", 465, "implicit"},
		Hint: "enable IMAP/POP in the mailbox settings (客户端设置); if the administrator turned on client authorization codes (客户端授权码), use one instead of the web password"}
}
