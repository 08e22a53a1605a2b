package main

import "testing"

func TestWindowsLoginName(t *testing.T) {
	for _, tt := range []struct{ account, computer, want string }{
		{`LAPTOP-7Q2\Alice`, "LAPTOP-7Q2", "alice"},
		{`laptop-7q2\alice`, "LAPTOP-7Q2", "alice"},
		{`CORP\Bob`, "LAPTOP-7Q2", "bob@corp"},
		{`Carol`, "X", "carol"},
		{`\dave`, "X", "dave"},
		{``, "X", ""},
	} {
		if got := windowsLoginName(tt.account, tt.computer); got != tt.want {
			t.Errorf("windowsLoginName(%q, %q) = %q, want %q", tt.account, tt.computer, got, tt.want)
		}
	}
}
