package mail

import "testing"

func TestEncodeMailbox(t *testing.T) {
	cases := map[string]string{
		"INBOX":              "INBOX",
		"已发送":                "&XfJT0ZAB-",
		"A&B":                "A&-B",
		"客户.北京":              "&W6JiNw-.&UxdOrA-",
		"Résumé 2024":        "R&AOk-sum&AOk- 2024",
		"~peter/mail/台北/日本語": "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
		"😀":                  "&2D3eAA-",
		"":                   "",
	}
	for in, want := range cases {
		if got := EncodeMailbox(in); got != want {
			t.Errorf("EncodeMailbox(%q) = %q, want %q", in, got, want)
		}
	}
}
