package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/sessionwatch/sessionwatch/pkg/report"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// people is what a run shows to people: the table on stdout (--format
// table) and the HTML report (--report), both rendered from the run's one
// tally (summary), so their numbers are the summary's and their findings
// the sinks'. A nil *people shows nothing.
type people struct {
	table       bool
	reportPath  string
	generatedAt time.Time
}

// newPeople returns nil when neither the table nor the report was asked
// for.
func newPeople(o options, e env) *people {
	if o.view != viewTable && o.reportPath == "" {
		return nil
	}
	return &people{table: o.view == viewTable, reportPath: o.reportPath, generatedAt: e.now()}
}

// write renders the table on stdout and writes the report.
func (p *people) write(e env, sum *summary) error {
	if p == nil {
		return nil
	}
	s := sum.report()
	findings := sum.acc.Findings()
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
