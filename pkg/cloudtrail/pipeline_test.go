package cloudtrail

import (
	"errors"
	"slices"
	"testing"
)

// setQueueAttributesRecord is written by hand (see testdata/cloudtrail-public/SOURCES.md).
const setQueueAttributesRecord = `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/mallory","accountId":"111122223333"},"eventTime":"2026-11-20T10:00:00Z","eventSource":"sqs.amazonaws.com","eventName":"SetQueueAttributes","awsRegion":"eu-west-1","requestParameters":{"queueUrl":"https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events","attributes":{"Policy":"{}","DelaySeconds":"0"}},"responseElements":null,"requestID":"req-q","eventID":"evt-q","recipientAccountId":"111122223333"}`

func TestPipelineCalls(t *testing.T) {
	records := publicRecords(t, "pipeline_records.jsonl")
	disable := string(records["49d14f36-6450-44a5-a501-b0fdcdfaeb99"])
	if disable == "" {
		t.Fatal("DisableRule record missing from pipeline_records.jsonl")
	}
	all := NewDecoder(Config{EventNames: append(DefaultEventNames(), PipelineEventNames()...)})
	stsOnly := NewDecoder(Config{})
	tests := []struct {
		name    string
		dec     *Decoder
		body    string
		wantErr error
		check   func(t *testing.T, ev *Event)
	}{
		{name: "DisableRule record", dec: all, body: disable, check: func(t *testing.T, ev *Event) {
			if ev.Pipeline == nil || ev.Pipeline.Rule != "sessionwatch-sts" || ev.Pipeline.Resource() != "rule sessionwatch-sts" {
				t.Errorf("pipeline = %+v", ev.Pipeline)
			}
		}},
		{name: "DisableRule in an aws.events envelope", dec: all, body: envelope("aws.events", EnvelopeDetailType, "123456789012", disable)},
		{name: "DisableRule in an aws.sts envelope is forged", dec: all, body: envelope("aws.sts", EnvelopeDetailType, "123456789012", disable), wantErr: ErrRejected},
		{name: "AssumeRole in an aws.events envelope is forged", dec: all, body: envelope("aws.events", EnvelopeDetailType, "111122223333", sampleRecord), wantErr: ErrRejected},
		{name: "aws.events envelope without pipeline names is out of scope", dec: stsOnly, body: envelope("aws.events", EnvelopeDetailType, "123456789012", disable), wantErr: ErrOutOfScope},
		{name: "DisableRule without pipeline names", dec: stsOnly, body: disable, wantErr: ErrOutOfScope},
		{name: "SetQueueAttributes", dec: all, body: envelope("aws.sqs", EnvelopeDetailType, "111122223333", setQueueAttributesRecord), check: func(t *testing.T, ev *Event) {
			if ev.Pipeline == nil || !slices.Equal(ev.Pipeline.Attributes, []string{"DelaySeconds", "Policy"}) ||
				ev.Pipeline.QueueURL != "https://sqs.eu-west-1.amazonaws.com/111122223333/sessionwatch-events" {
				t.Errorf("pipeline = %+v", ev.Pipeline)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := tc.dec.DecodeMessage([]byte(tc.body))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, msg.Event)
			}
		})
	}
}
