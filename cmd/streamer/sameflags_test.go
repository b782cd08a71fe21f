package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/internal/cli"
)

// TestClassificationFlagsMatchTheBackfill: streamer --help and backfill
// --help list every classification flag with the same help and default,
// and both list the replica's flags: the same event must be judged alike by
// both commands.
func TestClassificationFlagsMatchTheBackfill(t *testing.T) {
	var streamerHelp bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env{stdout: &streamerHelp, stderr: &streamerHelp, lookupEnv: noEnv}); code != exitOK {
		t.Fatalf("streamer --help: exit %d", code)
	}
	backfill := filepath.Join(t.TempDir(), "backfill")
	if out, err := exec.Command("go", "build", "-o", backfill, "../backfill").CombinedOutput(); err != nil {
		t.Fatalf("build the backfill: %v\n%s", err, out)
	}
	// flag's usage exits 0 with -help; the text is on stderr.
	backfillHelp, _ := exec.Command(backfill, "--help").CombinedOutput()

	shared := flag.NewFlagSet("shared", flag.ContinueOnError)
	shared.SetOutput(io.Discard)
	cli.AddClassificationFlags(shared)
	replica := flag.NewFlagSet("replica", flag.ContinueOnError)
	cli.AddReplicaFlags(replica, 0)
	streamerFlags, backfillFlags := helpBlocks(streamerHelp.String()), helpBlocks(string(backfillHelp))
	n := 0
	shared.VisitAll(func(f *flag.Flag) {
		n++
		s, b := streamerFlags[f.Name], backfillFlags[f.Name]
		if s == "" || s != b {
			t.Errorf("--%s differs:\nstreamer: %q\nbackfill: %q", f.Name, s, b)
		}
	})
	replica.VisitAll(func(f *flag.Flag) {
		n++
		if streamerFlags[f.Name] == "" || backfillFlags[f.Name] == "" {
			t.Errorf("--%s is not in both commands' help", f.Name)
		}
	})
	if n < 10 {
		t.Errorf("compared %d flags; the classification and replica flags are more", n)
	}
}

// helpBlocks maps each flag of a --help text to its lines (name, type,
// help, default).
func helpBlocks(help string) map[string]string {
	blocks := map[string]string{}
	var name string
	for _, line := range strings.Split(help, "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ = strings.Cut(rest, " ")
			blocks[name] = line
			continue
		}
		if name != "" && strings.HasPrefix(line, "    \t") {
			blocks[name] += "\n" + line
			continue
		}
		name = ""
	}
	return blocks
}
