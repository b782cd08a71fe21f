package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// backfillBinary builds the command once per test run, as production runs
// it (no race detector, so memory figures are the real ones).
func backfillBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "backfill-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "backfill")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build backfill: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// process is a backfill subprocess.
type process struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
	hwm    atomic.Int64 // peak resident set seen in /proc, bytes
}

// startBackfill starts the binary with the test's environment (emulator
// endpoints, fakes set with t.Setenv).
func startBackfill(t testing.TB, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(backfillBinary(t), args...), done: make(chan struct{})}
	p.cmd.Env = os.Environ()
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	go p.watchRSS()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing the test after timeout.
func (p *process) wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("backfill did not finish within %s; stderr:\n%s", timeout, p.stderr.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// watchRSS polls the subprocess's VmHWM (its peak resident set since
// exec) until it exits. Rusage's Maxrss would not do: Go starts children
// with vfork, so the child's Maxrss starts at the test process's own peak.
func (p *process) watchRSS() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil && kb*1024 > p.hwm.Load() {
						p.hwm.Store(kb * 1024)
					}
				}
			}
		}
		select {
		case <-p.done:
			return
		case <-t.C:
		}
	}
}

// maxRSS is the subprocess's peak resident set, in bytes, as last seen.
func (p *process) maxRSS() int64 { return p.hwm.Load() }

func readFindings(t testing.TB, path string) []sink.Finding {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sink.Finding
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var fd sink.Finding
		if err := json.Unmarshal(sc.Bytes(), &fd); err != nil {
			t.Fatalf("%s: %v", path, err) // a torn last line would show here
		}
		out = append(out, fd)
	}
	return out
}

type checkpointFile struct {
	Complete bool                              `json:"complete"`
	Lookups  map[string]*source.LookupPosition `json:"lookups"`
}

func readCheckpoint(path string) (checkpointFile, bool) {
	var cp checkpointFile
	b, err := os.ReadFile(path)
	if err != nil {
		return cp, false
	}
	return cp, json.Unmarshal(b, &cp) == nil
}

func (cp checkpointFile) pages() (n int64) {
	for _, p := range cp.Lookups {
		n += p.Pages
	}
	return n
}

// TestKillAndResume kills the backfill (SIGKILL) after some pages, reruns
// it with the same checkpoint, and checks that the two runs together
// report exactly a clean run's findings, with no finding twice except from
// the page each stream had in flight.
func TestKillAndResume(t *testing.T) {
	c, table := lookupCorpus(t, 41, 900, nil, threeRegions)
	startFakes(t, c)
	dir := t.TempDir()
	cpPath := filepath.Join(dir, "backfill.ckpt")
	args := func(out string, extra ...string) []string {
		return append(append([]string{"--table", table, "--regions", strings.Join(threeRegions, ","), "--session-retention", "30d",
			"--sink", "file:" + filepath.Join(dir, out), "--quiet"}, window(c)...), extra...)
	}

	first := startBackfill(t, args("run1.jsonl", "--checkpoint", cpPath)...)
	var atKill checkpointFile
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp, ok := readCheckpoint(cpPath)
		if ok && cp.pages() >= 6 {
			_ = first.cmd.Process.Signal(syscall.SIGKILL)
			<-first.done
			atKill, _ = readCheckpoint(cpPath) // what the killed run left
			break
		}
		select {
		case <-first.done:
			t.Fatalf("the first run ended (exit %d) before it could be killed; stderr:\n%s", first.cmd.ProcessState.ExitCode(), first.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress in the checkpoint; stderr:\n%s", first.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if atKill.Complete {
		t.Fatal("killed after completion: the test proves nothing")
	}
	run1 := readFindings(t, filepath.Join(dir, "run1.jsonl"))

	second := startBackfill(t, args("run2.jsonl", "--checkpoint", cpPath)...)
	if code := second.wait(t, time.Minute); code != exitFindings {
		t.Fatalf("resumed run: exit %d; stderr:\n%s", code, second.stderr.String())
	}
	if !strings.Contains(second.stderr.String(), "resuming an unfinished run") {
		t.Errorf("the second run did not say it resumed:\n%s", second.stderr.String())
	}
	if cp, _ := readCheckpoint(cpPath); !cp.Complete {
		t.Error("checkpoint not marked complete after the resumed run")
	}
	run2 := readFindings(t, filepath.Join(dir, "run2.jsonl"))

	clean := startBackfill(t, args("clean.jsonl")...)
	if code := clean.wait(t, time.Minute); code != exitFindings {
		t.Fatalf("clean run: exit %d; stderr:\n%s", code, clean.stderr.String())
	}
	want := map[string]string{} // event id → finding id
	for _, f := range readFindings(t, filepath.Join(dir, "clean.jsonl")) {
		want[f.Event.ID] = f.FindingID
	}
	if len(want) != len(c.Findings()) {
		t.Fatalf("clean run: %d findings, corpus expects %d", len(want), len(c.Findings()))
	}

	union := map[string]string{}
	seen1 := map[string]bool{}
	for _, f := range run1 {
		union[f.Event.ID] = f.FindingID
		seen1[f.Event.ID] = true
	}
	var dups []sink.Finding
	for _, f := range run2 {
		if seen1[f.Event.ID] {
			dups = append(dups, f)
		}
		union[f.Event.ID] = f.FindingID
	}
	for id, fid := range want {
		if union[id] != fid {
			t.Errorf("event %s: finding %q after kill and resume, %q in a clean run", id, union[id], fid)
		}
	}
	for id := range union {
		if _, ok := want[id]; !ok {
			t.Errorf("event %s: a finding the clean run does not have", id)
		}
	}

	// Each repeated finding must come from the page its stream had in
	// flight: among the first 50 events the resumed run read for it.
	byID := map[string]corpus.Event{}
	for _, ev := range c.All() {
		byID[ev.ID] = ev
	}
	for _, f := range dups {
		ev := byID[f.Event.ID]
		key := source.StreamKey("", ev.Region, ev.Name)
		pos := source.LookupPosition{}
		if p := atKill.Lookups[key]; p != nil {
			pos = *p
		}
		rank := 0
		for _, o := range c.All() {
			if o.Region != ev.Region || o.Name != ev.Name || o.Account != ev.Account {
				continue
			}
			if !pos.Oldest.IsZero() && (o.Time.After(pos.Oldest) || o.Time.Equal(pos.Oldest) && slices.Contains(pos.IDsAtOldest, o.ID)) {
				continue // read and checkpointed before the kill
			}
			if cmp.Or(o.Time.Compare(ev.Time), strings.Compare(o.ID, ev.ID)) > 0 {
				rank++ // newer: read before ev in the resumed stream
			}
		}
		if rank >= source.LookupPageSize {
			t.Errorf("event %s reported twice, but it is #%d of stream %s after the checkpoint: beyond the page in flight", ev.ID, rank+1, key)
		}
	}
	t.Logf("killed after %d checkpointed pages: run 1 %d findings, run 2 %d, %d reported twice (pages in flight), clean %d",
		atKill.pages(), len(run1), len(run2), len(dups), len(want))
}

// TestPeakRSSFlatInWindow runs the backfill as a subprocess over the last
// day and over 30 days of one session table and trail (the same event rate),
// from LookupEvents and from the S3 archive, and compares the peak resident
// sets: reading page by page (object by object) with a bounded session
// cache keeps memory flat in the window's size. One event name and a rate
// that fills LookupEvents pages even in one day, so that both windows read
// full pages (a page in flight per stream is the fixed cost).
func TestPeakRSSFlatInWindow(t *testing.T) {
	const days, perDay = 30, 200
	regions := []string{"us-east-1", "eu-west-1", "ap-southeast-2"}
	c, table := loadCorpus(t, corpus.Config{Seed: 51, Events: perDay * days, Now: testNow, Window: days * 24 * time.Hour,
		Retention: 45 * 24 * time.Hour, Regions: regions, EventNames: []string{corpus.AssumeRole}})
	startFakes(t, c)
	startS3(t, corpus.Archive(c, 100), nil)
	lastDay := testNow.Add(-24 * time.Hour)
	inLastDay := 0
	for _, ev := range c.Events {
		if !ev.Time.Before(lastDay) {
			inLastDay++
		}
	}
	windows := []struct {
		name   string
		args   []string
		events int
	}{
		{"1 day", []string{"--since", lastDay.Format(time.RFC3339), "--until", testNow.Format(time.RFC3339)}, inLastDay},
		{"30 days", window(c), len(c.Events)},
	}
	sources := map[string][]string{
		"lookup": {"--regions", strings.Join(regions, ",")},
		"s3":     {"--source", "s3://" + testBucket, "--s3-path-style"},
	}
	rss := map[string][2]int64{}
	for _, name := range []string{"lookup", "s3"} {
		var peaks [2]int64
		for i, w := range windows {
			args := append([]string{"--table", table, "--session-retention", "45d", "--quiet", "--event-names", corpus.AssumeRole,
				"--sink", "file:" + filepath.Join(t.TempDir(), "f.jsonl")}, w.args...)
			p := startBackfill(t, append(args, sources[name]...)...)
			if code := p.wait(t, 2*time.Minute); code != exitFindings {
				t.Fatalf("%s, %s: exit %d; stderr:\n%s", name, w.name, code, p.stderr.String())
			}
			if !strings.Contains(p.stderr.String(), "in scope        "+strconv.Itoa(w.events)+"\n") {
				t.Fatalf("%s, %s: want %d events in scope:\n%s", name, w.name, w.events, p.stderr.String())
			}
			peaks[i] = p.maxRSS()
		}
		rss[name] = peaks
		ratio := float64(peaks[1]) / float64(peaks[0])
		t.Logf("%s: peak RSS %.1f MiB over 1 day (%d events), %.1f MiB over 30 days (%d events): x%.2f",
			name, float64(peaks[0])/(1<<20), windows[0].events, float64(peaks[1])/(1<<20), windows[1].events, ratio)
		if ratio > 1.2 || ratio < 1/1.2 {
			t.Errorf("%s: peak RSS differs by more than 20%% between a 1-day and a 30-day window", name)
		}
	}
}
