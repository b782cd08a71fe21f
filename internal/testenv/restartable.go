package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
)

// Dynalite is a private dynalite that a test can stop and start again on
// the same port. Its tables live in a LevelDB directory (dynalite --path),
// so a restart finds the data written before the stop, as a DynamoDB outage
// would leave it.
type Dynalite struct {
	// Endpoint is the URL to point a client at; it survives restarts.
	Endpoint string

	t      testing.TB
	node   string
	cli    string
	port   int
	dir    string
	output testkit.LockedBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRestartableDynalite starts a private dynalite on a free port with its
// data in a temporary directory. It is stopped when the test ends.
func StartRestartableDynalite(t testing.TB) *Dynalite {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("find repository root: %v", err)
	}
	d := &Dynalite{t: t, cli: filepath.Join(root, "tools", "node_modules", ".bin", "dynalite"), dir: filepath.Join(t.TempDir(), "dynalite")}
	if _, err := os.Stat(d.cli); err != nil {
		t.Fatalf("dynalite is not installed (%v); %s", err, startHint)
	}
	if d.node, err = exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	if d.port, err = freePort(); err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	d.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port))
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("restartable dynalite output:\n%s", d.output.String())
		}
	})
	d.Start()
	return d
}

// Start starts dynalite (again) on its port and waits until it listens. It
// does nothing when dynalite is running.
func (d *Dynalite) Start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return
	}
	cmd := exec.Command(d.node, d.cli, "--host", "127.0.0.1", "--port", strconv.Itoa(d.port), "--path", d.dir,
		"--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0")
	cmd.Stdout, cmd.Stderr = &d.output, &d.output
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start dynalite: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a killed process reports its signal: expected
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			d.cmd = nil
			d.t.Fatalf("restartable dynalite exited before listening on %s (port taken?):\n%s", addr, d.output.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("restartable dynalite did not listen on %s within 15s: %v\n%s", addr, err, d.output.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills dynalite (as a crash would) and waits for it to exit. Stopping
// a stopped dynalite does nothing.
func (d *Dynalite) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}
