package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"unsafe"
)

// pty is a pseudo-terminal: the command writes to slave, a terminal as far
// as it can tell; the test reads what it wrote from master.
type pty struct {
	master, slave *os.File
	done          chan struct{}
	buf           bytes.Buffer
	err           error
}

// openPTY opens a pseudo-terminal (Linux /dev/ptmx) and starts reading it,
// so the command never blocks on a full terminal buffer.
func openPTY(t *testing.T) *pty {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	unlock := int32(0)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlock the pseudo-terminal: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("pseudo-terminal number: %v", errno)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's slave: %v", err)
	}
	p := &pty{master: master, slave: slave, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, err := io.Copy(&p.buf, master)
		// Reading a master whose slave is closed fails with EIO: the end.
		if !errors.Is(err, syscall.EIO) {
			p.err = err
		}
	}()
	t.Cleanup(func() { _ = slave.Close(); _ = master.Close() })
	return p
}

// output closes the slave and returns all that was written to it.
func (p *pty) output(t *testing.T) string {
	t.Helper()
	if err := p.slave.Close(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("read the pseudo-terminal: %v", p.err)
	}
	return p.buf.String()
}
