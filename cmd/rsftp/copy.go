package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/rsftp/rsftp/sftp"
)

// openSFTP connects and starts the sftp subsystem.
func openSFTP(ctx context.Context, f *commonFlags, spec remoteSpec, log *logger) (*session, *sftp.Client, error) {
	s, err := connect(ctx, f, spec, log)
	if err != nil {
		return nil, nil, err
	}
	sess, err := s.client.NewSession(ctx)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if err := sess.Subsystem(ctx, "sftp"); err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("%s: %w", s.host, err)
	}
	c, err := sftp.NewClient(ctx, sess.Channel())
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return s, c, nil
}

func progressFunc(p *progress, log *logger) func(sftp.ProgressEvent) {
	return func(ev sftp.ProgressEvent) {
		if ev.Warning != "" {
			log.warnf("%s: %s", ev.Path, ev.Warning)
			return
		}
		p.update(ev.Path, ev.Done, ev.Total, ev.Finished)
	}
}

func runGet(ctx context.Context, args []string) error {
	f, rest, err := parseFlags(args, "PicFoqprav")
	if err != nil {
		return usageErr("%v", err)
	}
	if len(rest) < 1 || len(rest) > 2 {
		return usageErr("get needs [user@]host:remote and optionally a local path")
	}
	spec, ok := parseRemote(rest[0])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[0])
	}
	local := "."
	if len(rest) == 2 {
		local = rest[1]
	}
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer s.Close()
	defer c.Close()
	remote := spec.path
	if remote == "" {
		remote = "."
	}
	st, err := c.Stat(remote)
	if err != nil {
		return err
	}
	if st.FileMode().IsDir() && !f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", remote)
	}
	// Into an existing directory: keep the remote base name, which must
	// be a plain name.
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		base := path.Base(strings.TrimRight(remote, "/"))
		if base == "." || base == "/" || base == "" {
			base = "."
			if real, err := c.RealPath(remote); err == nil {
				base = path.Base(real)
			}
		}
		if !sftp.ValidName(base) {
			return fmt.Errorf("cannot derive a local name from %q", remote)
		}
		local = filepath.Join(local, base)
	}
	p := s.progress
	return c.Download(ctx, remote, local, sftp.TransferOptions{
		Recursive:            f.recursive,
		PreserveTimesAndMode: f.preserve,
		Resume:               f.resume,
		Progress:             progressFunc(p, log),
	})
}

func runPut(ctx context.Context, args []string) error {
	f, rest, err := parseFlags(args, "PicFoqprav")
	if err != nil {
		return usageErr("%v", err)
	}
	if len(rest) != 2 {
		return usageErr("put needs a local path and [user@]host:[remote]")
	}
	local := rest[0]
	spec, ok := parseRemote(rest[1])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[1])
	}
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	if fi.IsDir() && !f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", local)
	}
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer s.Close()
	defer c.Close()
	remote := spec.path
	if remote == "" {
		remote = "."
	}
	if st, err := c.Stat(remote); err == nil && st.FileMode().IsDir() {
		base := filepath.Base(filepath.Clean(local))
		if base == "." || base == string(filepath.Separator) {
			if abs, err := filepath.Abs(local); err == nil {
				base = filepath.Base(abs)
			}
		}
		remote = path.Join(remote, base)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p := s.progress
	return c.Upload(ctx, local, remote, sftp.TransferOptions{
		Recursive:            f.recursive,
		PreserveTimesAndMode: f.preserve,
		Resume:               f.resume,
		Progress:             progressFunc(p, log),
	})
}

func runLs(ctx context.Context, args []string) error {
	f, rest, err := parseFlags(args, "PicFoqlav1")
	if err != nil {
		return usageErr("%v", err)
	}
	long, all := false, false
	for _, a := range args[:len(args)-len(rest)] {
		if strings.HasPrefix(a, "-") && !strings.ContainsAny(a, "PicFo") {
			long = long || strings.Contains(a, "l")
			all = all || strings.Contains(a, "a")
		}
	}
	if len(rest) != 1 {
		return usageErr("ls needs [user@]host:[path]")
	}
	spec, ok := parseRemote(rest[0])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[0])
	}
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer s.Close()
	defer c.Close()
	p := spec.path
	if p == "" {
		p = "."
	}
	st, err := c.Stat(p)
	if err != nil {
		return err
	}
	if !st.FileMode().IsDir() {
		if long {
			fmt.Println(longLine(path.Base(p), st))
		} else {
			fmt.Println(p)
		}
		return nil
	}
	entries, err := c.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !all && strings.HasPrefix(e.Name, ".") {
			continue
		}
		name := sanitize(e.Name)
		if long {
			if e.Longname != "" {
				fmt.Println(sanitize(e.Longname))
			} else {
				fmt.Println(longLine(name, &e.Attrs))
			}
		} else {
			fmt.Println(name)
		}
	}
	return nil
}

func longLine(name string, a *sftp.Attrs) string {
	return fmt.Sprintf("%s %8d %s %s", a.FileMode().String(), a.Size, a.ModTime().Format("Jan _2 15:04"), sanitize(name))
}

// sanitize keeps names from the server from driving the terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
