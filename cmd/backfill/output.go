package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// people is what a run shows to people: the table on stdout (--format
// table) and the HTML report (--report), both from one Accumulator fed
// every classified event the filters kept, so their numbers are the
// summary's. A nil *people shows nothing.
type people struct {
	acc         *report.Accumulator
	table       bool
	reportPath  string
	generatedAt time.Time
}

// newPeople returns nil when neither the table nor the report was asked
// for. The window is the run's (after a checkpoint's resume), or, for a
// findings file read whole, zero: the span of its findings.
func newPeople(o options, e env) *people {
	if o.view != viewTable && o.reportPath == "" {
		return nil
	}
	cfg := report.Config{Sources: []string{o.source}, Filter: o.filter, Now: e.now}
	if o.sourceKind != sourceFindings || o.windowSet {
		cfg.Window = [2]time.Time{o.since, o.until}
	}
	return &people{acc: report.NewAccumulator(cfg), table: o.view == viewTable, reportPath: o.reportPath, generatedAt: e.now()}
}

// add counts one classified event; safe for concurrent use.
func (p *people) add(ev *cloudtrail.Event, r classify.Result) {
	if p != nil {
		p.acc.Add(ev, r)
	}
}

// addFinding counts a finding of a findings file; it reports whether the
// finding was counted (not a redelivery, kept by the filters).
func (p *people) addFinding(f sink.Finding) bool {
	return p.acc.AddFinding(f)
}

// summary is the Accumulator's summary with the driver's counters, which
// it never sees, and any account that could not be read.
func (p *people) summary(sum *summary) report.Summary {
	s := p.acc.Summary()
	if !sum.findingsOnly {
		s.Events, s.InScope = int(sum.read.Load()), int(sum.inScope.Load())
	}
	for _, f := range sum.failures {
		s.Sources = append(s.Sources, "NOT READ: "+failureWhere(f)+": "+f.Error)
	}
	s.Coverage = sum.coverage
	return s
}

// write renders the table on stdout and writes the report.
func (p *people) write(e env, sum *summary) error {
	if p == nil {
		return nil
	}
	s := p.summary(sum)
	findings := p.acc.Findings()
	var errs []error
	if p.table {
		opts := report.TableOptions{}
		if f, ok := e.stdout.(*os.File); ok {
			opts.Color = report.ColorEnabled(f, e.lookupEnv)
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				opts.Width = w
			}
		}
		if err := report.WriteTable(e.stdout, findings, s, opts); err != nil {
			errs = append(errs, fmt.Errorf("--format table: %w", err))
		}
	}
	if p.reportPath != "" {
		if err := writeReport(p.reportPath, s, findings, p.generatedAt); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeReport(path string, s report.Summary, findings []sink.Finding, generatedAt time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--report: %w", err)
	}
	err = report.WriteHTML(f, s, findings, report.HTMLOptions{Title: "sessionwatch backfill report", GeneratedAt: generatedAt})
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--report %s: %w", path, err)
	}
	return nil
}
