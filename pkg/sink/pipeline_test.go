package sink

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// pipelineFinding is a pipeline_tampered finding: a DisableRule of the
// streamer's rule, or a SetQueueAttributes of its queue.
func pipelineFinding(queue bool) Finding {
	t := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ev := &cloudtrail.Event{
		ID: "evt-p", Name: "DisableRule", Source: cloudtrail.EventsEventSource, Time: t, Region: "eu-west-1", Account: "111122223333",
		RequestID: "req-p", SourceIP: "198.51.100.7", Caller: cloudtrail.Identity{Type: "IAMUser", ARN: "arn:aws:iam::111122223333:user/mallory", AccountID: "111122223333"},
		Pipeline: &cloudtrail.PipelineChange{Rule: "sessionwatch-sts"},
	}
	if queue {
		ev.Name, ev.Source = "SetQueueAttributes", cloudtrail.SQSEventSource
		ev.Pipeline = &cloudtrail.PipelineChange{QueueURL: "https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events", Attributes: []string{"Policy"}}
	}
	r := classify.Result{Verdict: classify.PipelineTampered, Severity: classify.SeverityHigh, Reason: ev.Name + " on " + ev.Pipeline.Resource(),
		FindingID: classify.FindingID(ev.DedupKey(), classify.PipelineTampered)}
	return NewFinding(ev, r, DetectorStreamer, t.Add(time.Second))
}

func TestPipelineTamperedRenderings(t *testing.T) {
	const ruleARN = "arn:aws:events:eu-west-1:111122223333:rule/sessionwatch-sts"
	const queueURL = "https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events"
	tests := []struct {
		name   string
		queue  bool
		format Format
		want   map[string]any // path → value
	}{
		{name: "native rule", format: FormatNative, want: map[string]any{"category": "pipeline_tampered", "severity": "high",
			"pipeline.service": "events.amazonaws.com", "pipeline.rule": "sessionwatch-sts", "pipeline.resource": "rule sessionwatch-sts"}},
		{name: "native queue", queue: true, format: FormatNative, want: map[string]any{"pipeline.service": "sqs.amazonaws.com", "pipeline.queue_url": queueURL}},
		{name: "ocsf rule", format: FormatOCSF, want: map[string]any{"api.service.name": "events.amazonaws.com", "api.operation": "DisableRule",
			"severity_id": 4.0, "finding_info.title": "Change to the event pipeline that feeds sessionwatch: rule sessionwatch-sts",
			"unmapped.pipeline.rule": "sessionwatch-sts", "unmapped.category": "pipeline_tampered"}},
		{name: "asff rule", format: FormatASFF, want: map[string]any{"GeneratorId": "sessionwatch/pipeline_tampered", "Severity.Label": "HIGH",
			"Action.AwsApiCallAction.ServiceName": "events.amazonaws.com", "ProductFields.sessionwatch/pipeline_resource": "rule sessionwatch-sts"}},
		{name: "asff queue", queue: true, format: FormatASFF, want: map[string]any{"Action.AwsApiCallAction.ServiceName": "sqs.amazonaws.com",
			"ProductFields.sessionwatch/pipeline_attributes": "Policy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pipelineFinding(tc.queue)
			b, err := Render(&f, tc.format, RenderConfig{})
			if err != nil {
				t.Fatal(err)
			}
			m := decode(t, b)
			for path, want := range tc.want {
				if got, _ := lookup(m, path); got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
			switch tc.format {
			case FormatOCSF:
				res, _ := lookup(m, "resources")
				list, _ := res.([]any)
				if len(list) != 1 || list[0].(map[string]any)["uid"] != ruleARN || list[0].(map[string]any)["type"] != "AWS::Events::Rule" {
					t.Errorf("resources %v, want the rule %s", res, ruleARN)
				}
			case FormatASFF:
				res := m["Resources"].([]any)[0].(map[string]any)
				wantType, wantID := "Other", ruleARN
				if tc.queue {
					wantType, wantID = "AwsSqsQueue", queueURL
				}
				if res["Type"] != wantType || res["Id"] != wantID {
					t.Errorf("resource %v, want %s %s", res, wantType, wantID)
				}
			}
			if strings.Contains(f.Description(), "no SourceIdentity") {
				t.Errorf("description %q speaks of a SourceIdentity", f.Description())
			}
		})
	}
}
