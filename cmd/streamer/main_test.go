package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// binary is the streamer built once for the tests that run it as a
// process.
var binary string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "streamer-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "streamer")
		// go test puts $GOROOT/bin first on the PATH of test binaries.
		build := exec.Command("go", "build", "-o", binary, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build the streamer: %v\n", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func TestHelpShowsAnExampleAndTheVariables(t *testing.T) {
	var out bytes.Buffer
	code := run(context.Background(), []string{"--help"}, env{stdout: &out, stderr: &out, lookupEnv: noEnv})
	if code != exitOK {
		t.Errorf("--help exit %d", code)
	}
	help := out.String()
	for _, want := range []string{
		"Example:", "streamer --queue-url https://sqs.", "SESSIONWATCH_QUEUE_URL=", "SESSIONWATCH_MAX_IN_FLIGHT",
		"-queue-url", "-table", "-sink", "-pollers", "-workers", "-max-in-flight", "-visibility-timeout",
		"-orphan-grace", "-accounts", "-event-names", "-session-retention", "-metrics-addr",
		"-shutdown-timeout", "-clock-skew", "-log-level", "-source-identity-pattern", "-include-service-callers",
		"-session-replica", "-replica-refresh", "-session-stream", "-replica-max-sessions", "-replica-max-wait", "-replica-scan-segments",
		"(default 2m)", "(default 1000)", "(default 15s)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
}

func noEnv(string) (string, bool) { return "", false }

func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	vars := map[string]string{
		"SESSIONWATCH_QUEUE_URL":               "https://sqs.eu-west-1.amazonaws.com/111122223333/q",
		"SESSIONWATCH_TABLE":                   "sessions",
		"SESSIONWATCH_SINK":                    "stdout,file:/tmp/f.jsonl",
		"SESSIONWATCH_POLLERS":                 "3",
		"SESSIONWATCH_WORKERS":                 "7",
		"SESSIONWATCH_MAX_IN_FLIGHT":           "50",
		"SESSIONWATCH_VISIBILITY_TIMEOUT":      "45s",
		"SESSIONWATCH_ORPHAN_GRACE":            "0",
		"SESSIONWATCH_ACCOUNTS":                "111122223333,444455556666",
		"SESSIONWATCH_EVENT_NAMES":             "AssumeRole,AssumeRoot",
		"SESSIONWATCH_SESSION_RETENTION":       "7d",
		"SESSIONWATCH_METRICS_ADDR":            "127.0.0.1:9999",
		"SESSIONWATCH_SHUTDOWN_TIMEOUT":        "1m",
		"SESSIONWATCH_CLOCK_SKEW":              "2m",
		"SESSIONWATCH_LOG_LEVEL":               "debug",
		"SESSIONWATCH_SOURCE_IDENTITY_PATTERN": `^acme/(?P<user>[a-z]+)/(?P<marker>x)/(?P<request_id>[0-9a-f]{8})$`,
		"SESSIONWATCH_INCLUDE_SERVICE_CALLERS": "true",
		"SESSIONWATCH_SESSION_REPLICA":         "on",
		"SESSIONWATCH_REPLICA_REFRESH":         "10s",
		"SESSIONWATCH_SESSION_STREAM":          "arn:aws:dynamodb:eu-west-1:111122223333:table/sessions/stream/2026-12-06T00:00:00.000",
		"SESSIONWATCH_REPLICA_MAX_SESSIONS":    "1000",
		"SESSIONWATCH_REPLICA_MAX_WAIT":        "5s",
		"SESSIONWATCH_REPLICA_SCAN_SEGMENTS":   "8",
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	o, err := parseOptions(nil, env{stderr: io.Discard, lookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	s := o.stream
	if o.queueURL != vars["SESSIONWATCH_QUEUE_URL"] || o.table != "sessions" || strings.Join(o.sinks, ",") != vars["SESSIONWATCH_SINK"] ||
		s.Pollers != 3 || s.Workers != 7 || s.MaxInFlight != 50 || s.VisibilityTimeout != 45*time.Second || s.OrphanGrace != 0 ||
		strings.Join(o.accounts, ",") != vars["SESSIONWATCH_ACCOUNTS"] || strings.Join(o.eventNames, ",") != "AssumeRole,AssumeRoot" ||
		o.classification.Retention != 7*24*time.Hour || o.metricsAddr != "127.0.0.1:9999" || s.ShutdownTimeout != time.Minute ||
		o.classification.ClockSkew != 2*time.Minute || o.logLevel.String() != "debug" ||
		o.classification.Pattern != vars["SESSIONWATCH_SOURCE_IDENTITY_PATTERN"] || !o.classification.IncludeServiceCallers ||
		o.replica != (cli.Replica{Mode: cli.ReplicaOn, Refresh: 10 * time.Second, StreamARN: vars["SESSIONWATCH_SESSION_STREAM"],
			MaxSessions: 1000, MaxWait: 5 * time.Second, ScanSegments: 8}) {
		t.Errorf("options from the environment: %+v", o)
	}
	// A flag wins over its variable.
	o, err = parseOptions([]string{"--workers", "9", "--sink", "file:/x"}, env{stderr: io.Discard, lookupEnv: lookup})
	if err != nil || o.stream.Workers != 9 || strings.Join(o.sinks, ",") != "file:/x" {
		t.Errorf("flags over variables: %+v %v", o, err)
	}
}

// TestBadFlagsExit2: every usage or configuration mistake is exit 2 and
// one plain line on stderr naming the flag, before anything starts: the
// AWS endpoints point at a closed port, so a streamer that started would
// say something else.
func TestBadFlagsExit2(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	base := []string{"--queue-url", "http://127.0.0.1:1/q", "--table", "t", "--metrics-addr", ""}
	for _, tt := range []struct {
		args []string
		want string // the line's start, after "streamer: "
	}{
		{[]string{"--table", "t"}, "--queue-url is required"},
		{[]string{"--queue-url", "q"}, "--table is required"},
		{[]string{"--workers", "0"}, "--workers 0: want at least 1"},
		{[]string{"--pollers", "0"}, "--pollers 0: want at least 1"},
		{[]string{"--max-in-flight", "0"}, "--max-in-flight 0: want at least 1"},
		{[]string{"--workers", "many"}, `--workers "many": not a number`},
		{[]string{"--session-retention", "0"}, "--session-retention 0s: want more than 0"},
		{[]string{"--clock-skew", "1h"}, "--clock-skew 1h: want 1s to 10m"},
		{[]string{"--clock-skew", "0"}, "--clock-skew 0s: want 1s to 10m"},
		{[]string{"--visibility-timeout", "1500ms"}, "--visibility-timeout 1.5s: want whole seconds from 1s to 12h"},
		{[]string{"--orphan-grace", "5h"}, "--orphan-grace 5h: want 0 to 1h"},
		{[]string{"--orphan-grace", "-1s"}, "--orphan-grace -1s: want 0 to 1h"},
		{[]string{"--shutdown-timeout", "0"}, "--shutdown-timeout 0s: want more than 0"},
		{[]string{"--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"--sink", "bogus:x"}, `--sink: unknown sink "bogus"`},
		{[]string{"--sink", "hec:https://splunk.example:8088"}, "--sink: hec sink token"},
		{[]string{"--source-identity-pattern", "("}, "--source-identity-pattern: SourceIdentity pattern: error parsing regexp"},
		{[]string{"--event-names", ","}, "--event-names: want at least one name"},
		{[]string{"--match", "fuzzy"}, "--match: "},
		{[]string{"--session-retention", "99999999d"}, `--session-retention: duration "99999999d": at most 106751d`},
		{[]string{"--bogus"}, "--bogus: no such flag (see --help)"},
		{[]string{"--session-replica", "sometimes"}, "--session-replica"},
		{[]string{"--replica-scan-segments", "0"}, "--replica-scan-segments"},
		{[]string{"--session-stream", "sessions"}, "--session-stream"},
	} {
		args := tt.args
		if len(args) > 0 && args[0] != "--table" && args[0] != "--queue-url" {
			args = append(slices.Clone(base), args...)
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, env{stdout: &stdout, stderr: &stderr, lookupEnv: noEnv})
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != exitUsage || len(lines) != 1 || !strings.HasPrefix(lines[0], "streamer: "+tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and one line starting %q", tt.args, code, stderr.String(), exitUsage, "streamer: "+tt.want)
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: wrote %q on stdout", tt.args, stdout.String())
		}
	}
}

// process is a streamer running as a child process.
type process struct {
	cmd     *exec.Cmd
	metrics string // base URL of the ops server
	stderr  *testkit.LockedBuffer
	exited  chan struct{}
	err     error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess runs the streamer binary with args; the table comes from
// SESSIONWATCH_TABLE, to exercise the environment too.
func startProcess(t *testing.T, table string, args ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary, append([]string{"--metrics-addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "SESSIONWATCH_TABLE="+table)
	p := &process{cmd: cmd, metrics: "http://" + addr, stderr: &testkit.LockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			log := p.stderr.String()
			if len(log) > 8000 {
				log = "…" + log[len(log)-8000:]
			}
			t.Logf("streamer pid %d stderr:\n%s", cmd.Process.Pid, log)
		}
	})
	testkit.Eventually(t, 15*time.Second, "the ops server", func() bool {
		resp, err := http.Get(p.metrics + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

func (p *process) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(p.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return math.NaN() // absent: equal to nothing, so no check passes on a renamed metric
}

// signal sends sig and returns how long the process took to exit, and its
// exit code.
func (p *process) signal(t *testing.T, sig syscall.Signal, limit time.Duration) (time.Duration, int) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("streamer still running %v after %v", limit, sig)
	}
	code := 0
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		code = exitErr.ExitCode()
	} else if p.err != nil {
		t.Fatal(p.err)
	}
	return time.Since(start), code
}

// readFindings parses the JSON lines of file sinks.
func readFindings(t *testing.T, paths ...string) []sink.Finding {
	t.Helper()
	var out []sink.Finding
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			var f sink.Finding
			if err := json.Unmarshal(line, &f); err != nil {
				t.Fatalf("%s: %v: %s", p, err, line)
			}
			out = append(out, f)
		}
	}
	return out
}

// checkFindings: every expected event has findings, all of its category and
// with one finding_id; no other event has any.
func checkFindings(t *testing.T, c *corpus.Corpus, got []sink.Finding) {
	t.Helper()
	by := map[string][]sink.Finding{}
	for _, f := range got {
		by[f.Event.ID] = append(by[f.Event.ID], f)
	}
	want := c.Findings()
	dupes := 0
	for _, ev := range want {
		fs := by[ev.ID]
		if len(fs) == 0 {
			t.Errorf("event %s (%s): lost, want a %s finding", ev.ID, ev.Case, ev.Expected)
		}
		for _, f := range fs {
			if f.Category != ev.Expected || f.FindingID != fs[0].FindingID {
				t.Errorf("event %s: %s %s, want %s %s", ev.ID, f.Category, f.FindingID, ev.Expected, fs[0].FindingID)
			}
		}
		dupes += max(len(fs)-1, 0)
		delete(by, ev.ID)
	}
	for id, fs := range by {
		t.Errorf("unexpected finding for event %s: %s", id, fs[0].Category)
	}
	t.Logf("%d expected findings all present; %d duplicates (same finding_id)", len(want), dupes)
}

// setup generates a corpus, loads its sessions and fills a queue with it.
func setup(t *testing.T, seed int64, events int) (*corpus.Corpus, string, *sqstest.Queue) {
	t.Helper()
	ctx := context.Background()
	dyn := testenv.DynamoClient(t)
	c, err := corpus.Generate(corpus.Config{Seed: seed, Events: events, Now: time.Now(), MinAge: time.Hour, OutOfScope: events / 10,
		Accounts: []string{"111122223333", "444455556666"}})
	if err != nil {
		t.Fatal(err)
	}
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, dyn, table); err != nil {
		t.Fatal(err)
	}
	if err := testenv.PutSessions(ctx, dyn, table, c.Sessions); err != nil {
		t.Fatal(err)
	}
	// local-aws-sqs counts visibility changes as receives: keep messages
	// held across a restart out of the DLQ.
	q := sqstest.CreateTestQueue(t, sqstest.Client(t), sqstest.Options{MaxReceiveCount: 1000})
	var msgs [][]byte
	for _, ev := range c.Events {
		msgs = append(msgs, corpus.EventBridgeEnvelope(ev))
	}
	for _, ev := range c.Ignored {
		msgs = append(msgs, ev.Record)
	}
	if err := q.Send(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	return c, table, q
}

// Visibility is short so that messages a stopped process held come back
// soon; local-aws-sqs also fills a 20 s long poll before it answers, so some
// messages come back twice, which at-least-once allows (same finding_id).
var processArgs = []string{"--visibility-timeout", "5s", "--shutdown-timeout", "5s", "--log-level", "info"}

func TestSIGTERMMidRunThenRestartFinishes(t *testing.T) {
	testStopMidRun(t, syscall.SIGTERM)
}

func TestKill9MidRunThenRestartFinishes(t *testing.T) {
	testStopMidRun(t, syscall.SIGKILL)
}

func testStopMidRun(t *testing.T, sig syscall.Signal) {
	c, table, q := setup(t, int64(sig), 2000)
	total := float64(len(c.Events) + len(c.Ignored))
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.jsonl"), filepath.Join(dir, "second.jsonl")

	p1 := startProcess(t, table, append([]string{"--queue-url", q.URL, "--sink", "file:" + first}, processArgs...)...)
	testkit.Eventually(t, 15*time.Second, "/readyz ready", func() bool {
		code, _ := get(t, p1.metrics+"/readyz")
		return code == http.StatusOK
	})
	testkit.Eventually(t, 60*time.Second, "a first part deleted", func() bool {
		return p1.metric(t, "sessionwatch_streamer_messages_deleted_total") >= 200
	})
	deleted := p1.metric(t, "sessionwatch_streamer_messages_deleted_total")
	took, code := p1.signal(t, sig, 10*time.Second)
	t.Logf("%v after %v of %v messages deleted: exit code %d after %v", sig, deleted, total, code, took.Round(time.Millisecond))
	if deleted >= total {
		t.Fatalf("the run was over before %v; not mid-run", sig)
	}
	if sig == syscall.SIGTERM {
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0", code)
		}
		if took > 5*time.Second {
			t.Errorf("exit took %v, --shutdown-timeout is 5s", took)
		}
		if !strings.Contains(p1.stderr.String(), `"message":"streamer stopped"`) {
			t.Errorf("no shutdown log line")
		}
	}

	p2 := startProcess(t, table, append([]string{"--queue-url", q.URL, "--sink", "file:" + second}, processArgs...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := q.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "nothing in flight", func() bool {
		return p2.metric(t, "sessionwatch_streamer_messages_in_flight") == 0
	})
	if _, code := p2.signal(t, syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("second streamer exit code %d", code)
	}
	checkFindings(t, c, readFindings(t, first, second))
	if v, f, err := q.DLQ.Depth(context.Background()); err != nil || v+f != 0 {
		t.Errorf("DLQ holds %d+%d messages (%v)", v, f, err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
