package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/sessionwatch/sessionwatch/pkg/report"
)

// findingsOptions checks the options of --source findings:PATH: a findings
// file (the streamer's file sink) rendered for people, nothing classified,
// so no session table, no sink and no AWS access.
func findingsOptions(o options, set map[string]bool) (options, error) {
	o.sourceKind = sourceFindings
	if strings.TrimPrefix(o.source, "findings:") == "" {
		return o, errors.New("--source findings: needs a path (findings:PATH)")
	}
	if o.view != viewTable && o.reportPath == "" {
		return o, errors.New("--source findings: renders findings for people: give --report FILE.html or --format table")
	}
	for _, name := range []string{"sink", "checkpoint", "regions", "accounts", "assume-role-name"} {
		if set[name] {
			return o, fmt.Errorf("--%s does not apply to --source findings: (the file is read and rendered, nothing is sent)", name)
		}
	}
	o.sinks = nil
	return o, nil
}

// readFindingsFile renders a findings file: each finding is counted once
// (the streamer delivers at least once), --account, --role and
// --principal apply, and --since and --until when given. Lines that are
// not findings are counted and logged; a read error ends the run.
func readFindingsFile(ctx context.Context, o options, e env, log zerolog.Logger) (*summary, *people, error) {
	path := strings.TrimPrefix(o.source, "findings:")
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--source %s: %w", o.source, err)
	}
	defer f.Close()

	sum := newSummary(o)
	ppl := newPeople(o, e) // never nil: findingsOptions wants --report or --format table
	defer func() { sum.finish(nil) }()
	for fd, err := range report.ReadFindings(f) {
		if cerr := ctx.Err(); cerr != nil {
			return sum, ppl, cerr
		}
		var lineErr *report.LineError
		switch {
		case errors.As(err, &lineErr):
			sum.malformed.Add(1)
			log.Warn().Err(err).Str("file", path).Msg("line is not a finding")
			continue
		case err != nil:
			return sum, ppl, fmt.Errorf("--source %s: %w", o.source, err)
		}
		sum.read.Add(1)
		if o.windowSet && (fd.Event.Time.Before(o.since) || !fd.Event.Time.Before(o.until)) {
			sum.outsideWindow.Add(1)
			continue
		}
		sum.inScope.Add(1)
		sum.addFinding(fd) // false for a redelivery, or filtered out
	}
	return sum, ppl, nil
}
