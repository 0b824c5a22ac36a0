//go:build unix

package worklock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockKeepsASecondRunOut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	l, err := Acquire(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "train")
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), dir+" is used by another run (train, process ") {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "search")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// TestKilledHolderLeavesNoStaleLock: the lock of a process that died
// without releasing it is free at once.
func TestKilledHolderLeavesNoStaleLock(t *testing.T) {
	if os.Getenv("WORKLOCK_CHILD") != "" {
		if _, err := Acquire(os.Getenv("WORKLOCK_CHILD"), "child"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		select {} // until killed
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledHolderLeavesNoStaleLock$")
	cmd.Env = append(os.Environ(), "WORKLOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		t.Fatalf("child: %q %v", buf, err)
	}
	if _, err := Acquire(dir, "train"); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "(child, process ") {
		t.Fatalf("while the child holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "train")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}
