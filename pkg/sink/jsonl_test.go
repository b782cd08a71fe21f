package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixedFinding() Finding {
	t := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ev := &cloudtrail.Event{
		ID: "evt-1", Name: "AssumeRole", Source: "sts.amazonaws.com", Time: t, Region: "eu-west-1", Account: "111122223333",
		RequestID: "req-1", SharedEventID: "shared-1", SourceIP: "198.51.100.7", UserAgent: "aws-cli/2.15",
		Caller: cloudtrail.Identity{Type: "AssumedRole", ARN: "arn:aws:sts::111122223333:assumed-role/Gateway/alice", PrincipalID: "AROAEXAMPLE:alice",
			AccountID: "111122223333", AccessKeyID: "ASIAEXAMPLECALLER", SessionIssuerARN: "arn:aws:iam::111122223333:role/Gateway"},
		SourceIdentity: "sentinel:alice:direct:0a1b2c3d", SourceIdentityOrigin: cloudtrail.OriginResponse,
		TargetRoleARN: "arn:aws:iam::111122223333:role/Admin", RoleSessionName: "alice",
		AssumedRoleARN: "arn:aws:sts::111122223333:assumed-role/Admin/alice", AccessKeyID: "ASIAEXAMPLEISSUED",
	}
	s := &sessions.Session{ID: "sess-1", User: "alice", Profile: "prod-admin", Status: sessions.StatusRevoked, StartedAt: t.Add(-time.Hour), ExpiresAt: t.Add(time.Hour), UpdatedAt: t.Add(-time.Minute)}
	r := classify.Result{
		Verdict: classify.Revoked, Severity: classify.SeverityCritical, Reason: "session sess-1 of \"alice\" was revoked",
		FindingID: classify.FindingID(ev.DedupKey(), classify.Revoked), Session: s,
		SourceIdentity: classify.SourceIdentity{Value: ev.SourceIdentity, Origin: ev.SourceIdentityOrigin,
			ParsedIdentity: classify.ParsedIdentity{Value: ev.SourceIdentity, User: "alice", Marker: "direct", RequestID: "0a1b2c3d"}},
	}
	return NewFinding(ev, r, DetectorStreamer, t.Add(2*time.Second))
}

func TestNativeJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter("buf", &buf).Write(context.Background(), []Finding{fixedFinding()}); err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, buf.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "finding.native.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("native JSON changed (run with -update if intended):\n%s", pretty.String())
	}
}

// TestNativeFieldNames pins the field names of DESIGN.md: SIEM parsers
// depend on them.
func TestNativeFieldNames(t *testing.T) {
	b, err := json.Marshal(fixedFinding())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"":                {"schema", "finding_id", "category", "severity", "reason", "detected_at", "detector", "event", "principal", "target", "source_identity", "session"},
		"event":           {"id", "name", "time", "region", "account", "request_id", "shared_event_id", "source_ip", "user_agent", "error_code"},
		"principal":       {"type", "arn", "principal_id", "account_id", "access_key_id", "session_issuer_arn"},
		"target":          {"role_arn", "role_session_name", "assumed_role_arn", "access_key_id"},
		"source_identity": {"value", "origin", "user", "marker", "request_id"},
		"session":         {"id", "user", "status", "profile", "started_at", "expires_at"},
	}
	for obj, fields := range want {
		got := m
		if obj != "" {
			got = m[obj].(map[string]any)
		}
		var keys []string
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		sort.Strings(fields)
		if strings.Join(keys, ",") != strings.Join(fields, ",") {
			t.Errorf("%s fields %v, want %v", obj, keys, fields)
		}
	}
	if m["schema"] != Schema || m["category"] != "revoked" || m["severity"] != "critical" || m["detector"] != "streamer" {
		t.Errorf("values: %v", m)
	}
}

func TestFindingWithoutSessionOmitsIt(t *testing.T) {
	f := fixedFinding()
	f.Session = nil
	b, _ := json.Marshal(f)
	if bytes.Contains(b, []byte(`"session"`)) {
		t.Errorf("session present: %s", b)
	}
}

// shortWriter accepts limit bytes, then fails.
type shortWriter struct {
	limit int
	buf   bytes.Buffer
}

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) <= w.limit {
		w.limit -= len(p)
		return w.buf.Write(p)
	}
	n, _ := w.buf.Write(p[:w.limit])
	w.limit = 0
	return n, errors.New("disk full")
}

func TestJSONLinesPartialWrite(t *testing.T) {
	one, _ := json.Marshal(fixedFinding())
	lineLen := len(one) + 1
	w := &shortWriter{limit: lineLen*2 + 10} // two whole lines and part of the third
	batch := []Finding{fixedFinding(), fixedFinding(), fixedFinding(), fixedFinding()}
	err := NewWriter("short", w).Write(context.Background(), batch)
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a BatchError", err)
	}
	if len(be.Failed) != 2 || be.Failed[2] == nil || be.Failed[3] == nil {
		t.Errorf("failed %v, want items 2 and 3", be.Failed)
	}
	if !strings.Contains(err.Error(), "disk full") {
		t.Errorf("error %q lacks the cause", err)
	}
}

func TestJSONLinesCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	err := NewWriter("buf", &buf).Write(ctx, []Finding{fixedFinding()})
	if !errors.Is(err, context.Canceled) || buf.Len() != 0 {
		t.Errorf("got %v and %d bytes", err, buf.Len())
	}
}

func TestFileSinkAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "findings.jsonl")
	for i := 0; i < 2; i++ {
		s, err := Open("file:" + path)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), []Finding{fixedFinding()}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\n")); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestOpen(t *testing.T) {
	for uri, ok := range map[string]bool{"stdout": true, "": true, "file:": false, "kafka:x": false} {
		_, err := Open(uri)
		if (err == nil) != ok {
			t.Errorf("Open(%q) error %v", uri, err)
		}
	}
	if _, err := Open("kafka:x"); !errors.Is(err, ErrUnknownSink) {
		t.Errorf("unknown sink error %v", err)
	}
}

// TestCheckURIAgreesWithOpen: every URI CheckURI refuses, Open refuses too,
// and the forms it accepts are the documented ones.
func TestCheckURIAgreesWithOpen(t *testing.T) {
	for uri, ok := range map[string]bool{
		"stdout": true, "-": true, "file:/tmp/x.jsonl": true, "ocsf+file:/tmp/x": true, "securityhub": true,
		"sqs:https://sqs.us-east-1.amazonaws.com/1/q": true, "sns:arn:aws:sns:us-east-1:1:t": true,
		"eventbridge:default": true, "webhook:https://siem.example/in": true, "hec:https://splunk.example:8088": true,
		"kafka:x": false, "file:": false, "sqs:": false, "sns:topic": false, "webhook:ftp://x": false,
		"hec:": false, "xml+stdout": false, "bogus": false,
	} {
		err := CheckURI(uri)
		if (err == nil) != ok {
			t.Errorf("CheckURI(%q) = %v, want ok %v", uri, err, ok)
		}
		if !ok {
			if _, oerr := Open(uri); oerr == nil {
				t.Errorf("Open(%q) accepted what CheckURI refused", uri)
			}
		}
	}
}
