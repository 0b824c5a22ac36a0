// Package worklock keeps two runs out of one work dir: a run holds an
// advisory lock on <work dir>/.lock for as long as it works there. The
// lock is the kernel's (flock), so it goes with the process however the
// process ends -- a killed run never leaves a stale lock that would block
// --auto-resume -- and the file only says which process holds it.
package worklock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File is the lock's name inside a work dir.
const File = ".lock"

// Lock is a held work-dir lock.
type Lock struct {
	f *os.File
}

// ErrBusy is wrapped by Acquire's error when another run holds the lock.
var ErrBusy = errors.New("work dir in use")

// Acquire creates dir if needed and locks it for this process, or says
// which run holds it. what names the command ("train") for the holder's
// description.
func Acquire(dir, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, File)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, errWouldBlock) {
			who := strings.TrimSpace(string(holder))
			if who == "" {
				who = "another process"
			}
			return nil, fmt.Errorf("%w: %s is used by another run (%s); wait for it to end or give another --work-dir", ErrBusy, dir, who)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// Only the holder writes the file, so a reader sees the holder.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%s, process %d, since %s\n", what, os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	}
	return &Lock{f: f}, nil
}

// Release unlocks the work dir (closing the file releases the lock).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
