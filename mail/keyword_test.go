package mail

import "testing"

func TestKeyword(t *testing.T) {
	for in, want := range map[string]string{
		"work":               "work",
		"$Forwarded":         "$Forwarded",
		"Red category":       "Red_category",
		"  Blue  ":           "Blue",
		`a(b)c{d}%e*f"g\h]i`: "a_b_c_d}_e_f_g_h_i",
		"Q&A":                "Q&-A",
		"红色类别":               "&fqKCcnx7Uis-",
		"项目 Alpha":           "&mHl27g-_Alpha",
		"":                   "",
	} {
		if got := Keyword(in); got != want {
			t.Errorf("Keyword(%q) = %q, want %q", in, got, want)
		}
	}
}
