package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResumeHelperKeyword: ResumeHelper is read per Host from
// ssh_config, even after "IgnoreUnknown ResumeHelper" (which keeps the
// file readable by OpenSSH's ssh); -o wins over the file; a bad value is
// an error naming the values.
func TestResumeHelperKeyword(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config")
	os.WriteFile(cfgPath, []byte(`IgnoreUnknown ResumeHelper
Host plain
  ResumeHelper no
Host strict
  ResumeHelper yes
`), 0o600)
	for host, want := range map[string]helperMode{"plain": helperNo, "strict": helperYes, "other": helperAuto} {
		c := newSSHConfig()
		if err := readOne(t, c, cfgPath, host); err != nil {
			t.Fatal(err)
		}
		got, err := parseHelperMode(c.getDefault(resumeHelperKeyword, "auto"))
		if err != nil || got != want {
			t.Errorf("%s: ResumeHelper %v (%v), want %v", host, got, err, want)
		}
	}
	c := newSSHConfig()
	if err := c.parseOption("ResumeHelper=yes"); err != nil {
		t.Fatal(err)
	}
	if err := readOne(t, c, cfgPath, "plain"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.get(resumeHelperKeyword); v != "yes" {
		t.Errorf("-o ResumeHelper=yes, then the file's no: %q; -o must win", v)
	}
	if err := newSSHConfig().parseOption("ResumeHelper=maybe"); err == nil {
		t.Error("ResumeHelper=maybe accepted")
	}
}
