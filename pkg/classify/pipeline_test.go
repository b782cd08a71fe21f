package classify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

func TestPipelineTampered(t *testing.T) {
	tests := []struct {
		name       string
		ev         *cloudtrail.Event
		wantSev    Severity
		wantReason []string
	}{
		{name: "DisableRule", ev: pipelineEvent("DisableRule", cloudtrail.EventsEventSource, &cloudtrail.PipelineChange{Rule: "sessionwatch-sts"}),
			wantSev: SeverityHigh, wantReason: []string{"DisableRule on rule sessionwatch-sts", "EventBridge rule or queue"}},
		{name: "PutRule disabling, on a named bus", ev: pipelineEvent("PutRule", cloudtrail.EventsEventSource, &cloudtrail.PipelineChange{Rule: "r", EventBus: "audit", RuleState: "DISABLED"}),
			wantSev: SeverityHigh, wantReason: []string{"PutRule on rule r on bus audit (state DISABLED)"}},
		{name: "SetQueueAttributes denied", ev: func() *cloudtrail.Event {
			ev := pipelineEvent("SetQueueAttributes", cloudtrail.SQSEventSource, &cloudtrail.PipelineChange{
				QueueURL: "https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events", Attributes: []string{"Policy", "RedrivePolicy"}})
			accessDenied(ev)
			return ev
		}(), wantSev: SeverityMedium, wantReason: []string{"queue https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events", "(attributes Policy, RedrivePolicy)", "denied with AccessDenied"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The store is never read for a pipeline call.
			finder := &fakeFinder{err: errors.New("store read")}
			c, err := New(finder, Config{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Classify(context.Background(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != PipelineTampered || r.Severity != tc.wantSev || !r.IsFinding() || len(finder.queries) != 0 {
				t.Errorf("verdict %s severity %s finding %v queries %d", r.Verdict, r.Severity, r.IsFinding(), len(finder.queries))
			}
			if r.FindingID != FindingID(tc.ev.DedupKey(), PipelineTampered) {
				t.Errorf("finding id %s", r.FindingID)
			}
			for _, want := range tc.wantReason {
				if !strings.Contains(r.Reason, want) {
					t.Errorf("reason %q lacks %q", r.Reason, want)
				}
			}
		})
	}
}

func pipelineEvent(name, source string, p *cloudtrail.PipelineChange) *cloudtrail.Event {
	return &cloudtrail.Event{ID: "evt-" + name, Name: name, Source: source, Time: evTime, RequestID: "req-" + name, Pipeline: p}
}
