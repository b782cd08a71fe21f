package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/sessionwatch/sessionwatch/internal/testkit"
	"github.com/sessionwatch/sessionwatch/pkg/source"
)

// TestProgressDrawsEachStream draws the bars as a terminal would see them:
// one line per stream with its events, pages, rate and ETA; log lines go
// above the bars while they are drawn.
func TestProgressDrawsEachStream(t *testing.T) {
	var stats source.Stats
	east, west := stats.NewStream("us-east-1"), stats.NewStream("eu-west-1")
	var out testkit.LockedBuffer
	logs := &switchWriter{w: &out}
	pr := newProgress(&out, &stats, logs, mpb.ForceTTY(), mpb.WithAutoRefresh())
	east.Events.Add(150)
	east.Pages.Add(3)
	east.SetCovered(0.5)
	west.Events.Add(40)
	west.Pages.Add(1)
	west.Finish()
	time.Sleep(500 * time.Millisecond)
	_, _ = logs.Write([]byte("a log line\n"))
	time.Sleep(300 * time.Millisecond)
	pr.stop()
	if logs.w != &out {
		t.Error("logs still go to the progress display after stop")
	}
	screen := out.String()
	for _, want := range []string{"us-east-1", "eu-west-1", "150 events 3 pages", "40 events 1 pages", "ev/s", "done", "a log line"} {
		if !strings.Contains(screen, want) {
			t.Errorf("progress lacks %q:\n%q", want, screen)
		}
	}
}

// TestNoProgressWhenPiped: stderr that is not a terminal gets the summary
// and nothing else.
func TestNoProgressWhenPiped(t *testing.T) {
	var out bytes.Buffer
	if pr := startProgress(&out, &source.Stats{}, &switchWriter{w: &out}); pr != nil {
		pr.stop()
		t.Fatal("a progress display on a buffer")
	}
}
