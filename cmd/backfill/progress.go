package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/sessionwatch/sessionwatch/pkg/source"
)

var termIsTerminal = term.IsTerminal

// progressScale is a bar's total: streams report the part done in
// millionths.
const progressScale = 1_000_000

// progress shows one bar per stream of the source (an account and region,
// an archive, a folder): the part of the window done, events, pages, rate
// and ETA. It draws only on a terminal.
type progress struct {
	p     *mpb.Progress
	stats *source.Stats
	stopc chan struct{}
	done  chan struct{}
	bars  map[*source.Stream]*mpb.Bar
}

// startProgress draws on w when it is a terminal; otherwise it returns nil
// (whose stop does nothing).
func startProgress(w io.Writer, stats *source.Stats, logs *switchWriter) *progress {
	if !isTerminal(w) {
		return nil
	}
	return newProgress(w, stats, logs)
}

func newProgress(w io.Writer, stats *source.Stats, logs *switchWriter, opts ...mpb.ContainerOption) *progress {
	pr := &progress{
		p:     mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(100), mpb.WithRefreshRate(200 * time.Millisecond)}, opts...)...),
		stats: stats, stopc: make(chan struct{}), done: make(chan struct{}), bars: map[*source.Stream]*mpb.Bar{},
	}
	// Log lines go above the bars while they are drawn.
	logs.set(pr.p)
	go pr.loop(logs, w)
	return pr
}

func (pr *progress) loop(logs *switchWriter, w io.Writer) {
	defer close(pr.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		pr.update()
		select {
		case <-t.C:
		case <-pr.stopc:
			pr.update()
			for _, b := range pr.bars {
				if !b.Completed() {
					b.Abort(false)
				}
			}
			pr.p.Wait()
			logs.set(w)
			return
		}
	}
}

func (pr *progress) update() {
	for _, st := range pr.stats.Streams() {
		b := pr.bars[st]
		if b == nil {
			b = pr.addBar(st)
			pr.bars[st] = b
		}
		if b.Completed() {
			continue
		}
		if c := st.Covered(); c >= 0 {
			b.SetCurrent(int64(c * progressScale))
		}
		if st.Done() {
			b.SetTotal(progressScale, true)
		}
	}
}

func (pr *progress) addBar(st *source.Stream) *mpb.Bar {
	start := time.Now()
	counts := func(decor.Statistics) string {
		ev := st.Events.Load()
		rate := float64(ev) / max(time.Since(start).Seconds(), 0.001)
		return fmt.Sprintf("%d events %d pages %.0f ev/s", ev, st.Pages.Load(), rate)
	}
	return pr.p.AddBar(progressScale,
		mpb.PrependDecorators(decor.Name(st.Name, decor.WCSyncSpaceR), decor.Percentage(decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Any(counts, decor.WCSyncSpace),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), "done")),
	)
}

// stop ends the display; safe on nil.
func (pr *progress) stop() {
	if pr == nil {
		return
	}
	close(pr.stopc)
	<-pr.done
}

// switchWriter sends log lines to the terminal, or above the progress bars
// while they are drawn.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
