package main

import (
	"strings"
	"testing"
)

func TestSMTPConfig(t *testing.T) {
	cases := []struct {
		raw      string
		plain    bool
		security string
		port     int
		user     string
		err      string
	}{
		{raw: "smtps://banjia@new.example@smtp.new.example:465", security: "tls", port: 465, user: "banjia@new.example"},
		{raw: "smtps://a%40b.example@smtp.b.example", security: "tls", port: 465, user: "a@b.example"},
		{raw: "smtp://u@smtp.x.example", security: "starttls", port: 587, user: "u"},
		{raw: "smtp://u@smtp.x.example:2525", security: "starttls", port: 2525, user: "u"},
		{raw: "smtp://127.0.0.1:25", plain: true, security: "none", port: 25},
		{raw: "smtps://u:secret@smtp.x.example", err: "not in the URL"},
		{raw: "http://smtp.x.example", err: "the scheme is smtps"},
		{raw: "smtp.x.example", err: "want smtps://USER@HOST:465"},
		{raw: "smtp://u@smtp.x.example:port", err: "not a server address"},
		{raw: "smtp://u:secret@smtp.x.example:port", err: "not a server address"},
	}
	for _, c := range cases {
		cfg, err := smtpConfig(c.raw, "pw", c.plain)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.raw, err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: the error shows the password: %v", c.raw, err)
			}
			continue
		}
		if err != nil || cfg.Security != c.security || cfg.Port != c.port || cfg.User != c.user || cfg.Password != "pw" {
			t.Errorf("%s: %+v %v", c.raw, cfg, err)
		}
	}
}
