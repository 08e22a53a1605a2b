package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/sftp"
)

func lsAttrs(mode uint32, size uint64, mtime time.Time) sftp.Attrs {
	return sftp.Attrs{Flags: sftp.AttrSize | sftp.AttrPermissions | sftp.AttrACModTime | sftp.AttrUIDGID,
		Mode: mode, Size: size, Mtime: uint32(mtime.Unix()), Atime: uint32(mtime.Unix()), UID: 1000, GID: 100}
}

func lsNames(items []lsItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.display)
	}
	return out
}

// TestLsSort: by name in byte order by default, -S largest first, -t
// newest first, -r reversed, -f as the server sent them; ties by name.
func TestLsSort(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	base := []lsItem{
		{display: "b", attrs: lsAttrs(0o100644, 300, now.Add(-3*time.Hour))},
		{display: "B", attrs: lsAttrs(0o100644, 100, now.Add(-1*time.Hour))},
		{display: "a", attrs: lsAttrs(0o100644, 300, now.Add(-2*time.Hour))},
		{display: "c", attrs: lsAttrs(0o040755, 200, now.Add(-2*time.Hour))},
	}
	for _, tc := range []struct {
		o    lsOptions
		want []string
	}{
		{lsOptions{}, []string{"B", "a", "b", "c"}},
		{lsOptions{reverse: true}, []string{"c", "b", "a", "B"}},
		{lsOptions{bySize: true}, []string{"a", "b", "c", "B"}},
		{lsOptions{bySize: true, reverse: true}, []string{"B", "c", "b", "a"}},
		{lsOptions{byTime: true}, []string{"B", "a", "c", "b"}},
		{lsOptions{byTime: true, reverse: true}, []string{"b", "c", "a", "B"}},
		{lsOptions{unsorted: true}, []string{"b", "B", "a", "c"}},
		{lsOptions{unsorted: true, reverse: true}, []string{"b", "B", "a", "c"}},
	} {
		items := slices.Clone(base)
		lsSort(items, tc.o)
		if got := lsNames(items); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %q, want %q", tc.o, got, tc.want)
		}
	}
}

// TestLsLongLine: OpenSSH's ls_file layout; link count, owner and group
// from the server's longname when it agrees with the attributes, else
// "?" and numeric ids; the year for files six months old or from the
// future; -n and -h.
func TestLsLongLine(t *testing.T) {
	loc := time.UTC
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, loc)
	recent := now.Add(-30 * 24 * time.Hour)
	old := now.Add(-lsSixMonths - time.Hour)
	future := now.Add(48 * time.Hour)
	withLong := lsItem{display: "report.csv", attrs: lsAttrs(0o100640, 1234, recent),
		longname: "-rw-r-----    3 alice    staff        1234 May  2 12:00 report.csv"}
	for _, tc := range []struct {
		name string
		it   lsItem
		o    lsOptions
		want string
	}{
		{"names from the longname", withLong, lsOptions{},
			"-rw-r-----    3 alice    staff        1234 May  2 12:00 report.csv"},
		{"-n keeps the ids", withLong, lsOptions{numeric: true},
			"-rw-r-----    3 1000     100          1234 May  2 12:00 report.csv"},
		{"-h", withLong, lsOptions{human: true},
			"-rw-r-----    3 alice    staff        1.2K May  2 12:00 report.csv"},
		{"no longname: ? and ids, the year when old", lsItem{display: "dir/old.tar", attrs: lsAttrs(0o100644, 7, old)}, lsOptions{},
			"-rw-r--r--    ? 1000     100             7 Nov 30  2025 dir/old.tar"},
		{"future dates have the year", lsItem{display: "f", attrs: lsAttrs(0o100644, 0, future)}, lsOptions{},
			"-rw-r--r--    ? 1000     100             0 Jun  3  2026 f"},
		{"a longname that disagrees is not used", lsItem{display: "x", attrs: lsAttrs(0o100644, 5, recent),
			longname: "-rw-r--r--    1 some user  group     5 May  2 12:00 x"}, lsOptions{},
			"-rw-r--r--    ? 1000     100             5 May  2 12:00 x"},
		{"a directory, setuid and sticky bits, long names", lsItem{display: "d", attrs: lsAttrs(0o041777|0o4000, 4096, recent),
			longname: "drwsrwxrwt   12 a-very-long-user g    4096 May  2 12:00 d"}, lsOptions{},
			"drwsrwxrwt   12 a-very-long-user g            4096 May  2 12:00 d"},
		{"names are sanitized", lsItem{display: "bad\x1b[2Jname", attrs: lsAttrs(0o120777, 3, recent)}, lsOptions{},
			"lrwxrwxrwx    ? 1000     100             3 May  2 12:00 bad?[2Jname"},
	} {
		if got := lsLongLine(tc.it, tc.o, now, loc); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

func TestLsScaled(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 1: "1B", 1023: "1023B", 1024: "1.0K", 1536: "1.5K", 10240: "10.0K",
		99 * 1024: "99.0K", 100 * 1024: "100K", 1048575: "1024K", 5 << 20: "5.0M", 1536 << 20: "1.5G", 1 << 40: "1.0T"} {
		if got := lsScaled(n); got != want {
			t.Errorf("lsScaled(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLsModeString(t *testing.T) {
	for m, want := range map[uint32]string{0o100644: "-rw-r--r--", 0o040755: "drwxr-xr-x", 0o120777: "lrwxrwxrwx",
		0o104755: "-rwsr-xr-x", 0o102644: "-rw-r-Sr--", 0o041777: "drwxrwxrwt", 0o041776: "drwxrwxrwT",
		0o020620: "crw--w----", 0o060660: "brw-rw----", 0o010644: "prw-r--r--", 0o140755: "srwxr-xr-x", 0o644: "?rw-r--r--"} {
		if got := lsModeString(m); got != want {
			t.Errorf("lsModeString(%o) = %q, want %q", m, got, want)
		}
	}
}

// TestLsFormat: hidden names left out without -a, one per line off a
// terminal and with -1, columns filled across as sftp lays them out.
func TestLsFormat(t *testing.T) {
	now := time.Now()
	items := []lsItem{{display: "beta"}, {display: ".hidden"}, {display: "alpha"}, {display: "gamma-long-name"}, {display: "."}, {display: ".."}}
	vis := lsVisible(slices.Clone(items), lsOptions{})
	if got := lsFormat(vis, lsOptions{}, now, time.UTC, 0); !slices.Equal(got, []string{"alpha", "beta", "gamma-long-name"}) {
		t.Fatalf("not a terminal: %q", got)
	}
	all := lsVisible(slices.Clone(items), lsOptions{all: true})
	if got := lsFormat(all, lsOptions{all: true, single: true}, now, time.UTC, 80); !slices.Equal(got, []string{".", "..", ".hidden", "alpha", "beta", "gamma-long-name"}) {
		t.Fatalf("-a1: %q", got)
	}
	// The longest name (15) plus 2: 2 columns of 20 in 40.
	got := lsFormat(vis, lsOptions{}, now, time.UTC, 40)
	want := []string{"alpha               beta", "gamma-long-name"}
	if !slices.Equal(got, want) {
		t.Fatalf("columns:\n%q\nwant\n%q", got, want)
	}
	if got := lsColumns([]string{"a", "b", "c"}, 3); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("narrow: %q", got)
	}
	if !lsHidden("dir/.x") || lsHidden(".dir/x") || !lsHidden("..") {
		t.Fatal("lsHidden")
	}
	long := lsFormat([]lsItem{{display: "f", attrs: lsAttrs(0o100644, 1, now)}}, lsOptions{long: true}, now, time.UTC, 80)
	if len(long) != 1 || !strings.HasPrefix(long[0], "-rw-r--r--    ? 1000") {
		t.Fatalf("long: %q", long)
	}
}
