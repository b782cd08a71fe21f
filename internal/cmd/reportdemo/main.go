// Command reportdemo renders a sample sessionwatch report from a generated
// corpus, with no AWS account and no emulator: the corpus's session table
// is served from memory to the real classifier, and the events go through
// the same filter, accumulator and renderers the backfill uses.
//
//	go run ./internal/cmd/reportdemo                                  # out/report-sample.html
//	go run ./internal/cmd/reportdemo -table -role '*Admin*'           # and the terminal table
//	go run ./internal/cmd/reportdemo -findings out/findings.jsonl     # also write the findings
//	go run ./internal/cmd/reportdemo -from-findings out/findings.jsonl -out out/report-findings.html
//	go run ./internal/cmd/reportdemo -hostile -out out/report-hostile.html
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/internal/cli"
	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// demoNow is the corpus's and the classifier's clock: a fixed instant, so
// the sample is the same on every run.
var demoNow = time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "reportdemo: %v\n", err)
		os.Exit(2)
	}
}

func run() error {
	var (
		out          = flag.String("out", "out/report-sample.html", "the HTML report to write")
		seed         = flag.Int64("seed", 7, "corpus seed")
		events       = flag.Int("events", 3000, "in-scope events")
		days         = flag.Int("days", 14, "window in days")
		workers      = flag.Int("workers", 4, "concurrent classifications")
		table        = flag.Bool("table", false, "also write the terminal table to stdout")
		hostile      = flag.Bool("hostile", false, "add findings whose SourceIdentity, user agent and ARNs hold markup")
		findingsOut  = flag.String("findings", "", "also write every finding as JSON lines to this file")
		fromFindings = flag.String("from-findings", "", "render from this findings file instead of classifying a corpus")
		maxRows      = flag.Int("max-rows", 0, "findings table rows (0: the default cap)")
		roles        cli.List
		principals   cli.List
		profiles     cli.List
		accounts     cli.List
	)
	flag.Var(&roles, "role", "target role ARN glob (repeatable)")
	flag.Var(&principals, "principal", "caller ARN or principal id glob (repeatable)")
	flag.Var(&profiles, "profile", "matched session's profile glob (repeatable)")
	flag.Var(&accounts, "account", "recipient account glob (repeatable)")
	flag.Parse()

	flt, err := report.NewFilter(report.FilterConfig{Roles: roles.Values(), Principals: principals.Values(),
		Profiles: profiles.Values(), Accounts: accounts.Values()})
	if err != nil {
		return err
	}
	var (
		sum  report.Summary
		rows []sink.Finding
	)
	if *fromFindings != "" {
		sum, rows, err = fromFile(*fromFindings, flt, *maxRows)
	} else {
		sum, rows, err = fromCorpus(*seed, *events, *days, *workers, *hostile, flt, *maxRows, *findingsOut)
	}
	if err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	err = report.WriteHTML(f, sum, rows, report.HTMLOptions{Title: "sessionwatch report (sample)", GeneratedAt: demoNow, MaxRows: *maxRows})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reportdemo: wrote %s (%d findings, %d rows)\n", *out, sum.Findings, len(rows))
	if *table {
		return report.WriteTable(os.Stdout, rows, sum, report.TableOptions{Color: report.ColorEnabled(os.Stdout, os.LookupEnv)})
	}
	return nil
}

// fromCorpus classifies a generated corpus as a backfill over its last
// `days` days would: window, filters before and after classification,
// the accumulator fed by concurrent workers.
func fromCorpus(seed int64, events, days, workers int, hostile bool, flt *report.Filter, maxRows int, findingsOut string) (report.Summary, []sink.Finding, error) {
	window := time.Duration(days) * 24 * time.Hour
	c, err := corpus.Generate(corpus.Config{Seed: seed, Events: events, Now: demoNow, Window: window,
		Accounts: []string{"111122223333", "444455556666", "777788889999"},
		Regions:  []string{"us-east-1", "eu-west-1", "ap-southeast-2"}, OutOfScope: events / 20})
	if err != nil {
		return report.Summary{}, nil, err
	}
	// A retention shorter than the window: old events without a session
	// are unverifiable, recent ones orphaned, as with a short session TTL.
	classifier, err := newClassifier(c.Sessions, classify.Config{Retention: window * 2 / 3, Now: func() time.Time { return demoNow }})
	if err != nil {
		return report.Summary{}, nil, err
	}
	since, until := demoNow.Add(-window), demoNow
	acc := report.NewAccumulator(report.Config{Window: [2]time.Time{since, until}, Sources: []string{fmt.Sprintf("corpus:seed=%d", seed)},
		Filter: flt, MaxFindings: maxRows})

	decoder := cloudtrail.NewDecoder(cloudtrail.Config{})
	var inScope []*cloudtrail.Event
	read := 0
	for _, ev := range c.All() {
		read++
		e, err := cloudtrail.DecodeRecord(ev.Record)
		if err != nil {
			return report.Summary{}, nil, err
		}
		if decoder.CheckRecord(e) != nil || e.Time.Before(since) || !e.Time.Before(until) {
			continue // out of scope, or outside the window
		}
		inScope = append(inScope, e)
	}
	if hostile {
		inScope = append(inScope, hostileEvents(until)...)
		read += 2
	}

	var (
		mu  sync.Mutex
		all []sink.Finding
	)
	// The first classification error stops the run (a buffered error
	// channel drained only after the workers finished could fill up and
	// block them for good).
	g, ctx := errgroup.WithContext(context.Background())
	work := make(chan *cloudtrail.Event)
	for range workers {
		g.Go(func() error {
			for ev := range work {
				if !flt.KeepEvent(ev) {
					continue
				}
				r, err := classifier.Classify(ctx, ev)
				if err != nil {
					return err
				}
				if !flt.KeepResult(r) {
					continue
				}
				if !r.IsFinding() {
					acc.Add(ev, r, nil)
					continue
				}
				f := sink.NewFinding(ev, r, sink.DetectorBackfill, demoNow)
				acc.Add(ev, r, &f)
				if findingsOut != "" {
					mu.Lock()
					all = append(all, f)
					mu.Unlock()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, ev := range inScope {
			select {
			case work <- ev:
			case <-ctx.Done():
				return nil
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return report.Summary{}, nil, err
	}

	sum := acc.Summary()
	sum.Events, sum.InScope = read, len(inScope)
	if findingsOut != "" {
		if err := writeFindings(findingsOut, all); err != nil {
			return report.Summary{}, nil, err
		}
	}
	return sum, acc.Findings(), nil
}

// fromFile renders a findings file, as `backfill --source findings:PATH`
// would: findings only, redeliveries counted once.
func fromFile(path string, flt *report.Filter, maxRows int) (report.Summary, []sink.Finding, error) {
	f, err := os.Open(path)
	if err != nil {
		return report.Summary{}, nil, err
	}
	defer f.Close()
	acc := report.NewAccumulator(report.Config{Sources: []string{"findings:" + path}, Filter: flt, MaxFindings: maxRows})
	bad := 0
	for fd, err := range report.ReadFindings(f) {
		var lineErr *report.LineError
		switch {
		case errors.As(err, &lineErr):
			bad++
			continue
		case err != nil:
			return report.Summary{}, nil, err
		}
		acc.AddFinding(fd) // drops redeliveries, then applies the filter
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "reportdemo: %d lines of %s are not findings\n", bad, path)
	}
	return acc.Summary(), acc.Findings(), nil
}

func writeFindings(path string, fs []sink.Finding) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := sink.NewWriter(path, f)
	err = w.Write(context.Background(), fs)
	if cerr := w.Close(context.Background()); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hostileEvents are calls whose attacker-chosen fields hold markup; the
// report must show them as text.
func hostileEvents(until time.Time) []*cloudtrail.Event {
	t := until.Add(-3 * time.Hour).Truncate(time.Second)
	return []*cloudtrail.Event{
		{ID: "hostile-1", Name: "AssumeRole", Source: "sts.amazonaws.com", Time: t, Region: "eu-west-1", Account: "111122223333",
			RequestID: "hostile-request-1", SourceIP: "203.0.113.66", UserAgent: `</script><img src=x onerror=alert(2)>`,
			Caller:         cloudtrail.Identity{Type: "IAMUser", ARN: `arn:aws:iam::111122223333:user/"><svg onload=alert(3)>`, AccountID: "111122223333"},
			SourceIdentity: `<script>alert(1)</script>`, SourceIdentityOrigin: cloudtrail.OriginRequest,
			TargetRoleARN: "arn:aws:iam::111122223333:role/SentinelAdmin", RoleSessionName: "x"},
		{ID: "hostile-2", Name: "AssumeRole", Source: "sts.amazonaws.com", Time: t.Add(time.Minute), Region: "eu-west-1", Account: "111122223333",
			RequestID: "hostile-request-2", SourceIP: "203.0.113.66", UserAgent: "curl/8.5.0 \x1b[2J\u202etxt.exe",
			Caller:         cloudtrail.Identity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/mallory", AccountID: "111122223333"},
			SourceIdentity: "sentinel:mallory:direct:\u202e1b2c3d4a", SourceIdentityOrigin: cloudtrail.OriginRequest,
			TargetRoleARN: "arn:aws:iam::111122223333:role/SentinelAdmin", RoleSessionName: "y"},
	}
}

func newClassifier(table []sessions.Session, cfg classify.Config) (*classify.Classifier, error) {
	store := memory.NewSessions(table)
	cache, err := sessions.NewCache(store, sessions.CacheConfig{})
	if err != nil {
		return nil, err
	}
	dir, err := sessions.NewDirectory(store, sessions.DirectoryConfig{})
	if err != nil {
		return nil, err
	}
	m, err := sessions.NewMatcher(cache, dir, sessions.MatcherConfig{})
	if err != nil {
		return nil, err
	}
	return classify.New(m, cfg)
}
