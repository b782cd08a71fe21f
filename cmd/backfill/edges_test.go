package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sinkfake"
)

// TestBackfillReadNothingExits2: a run that could read no record fails (exit
// 2) and says why on stderr and in the summary JSON, since a scheduled
// backfill of an empty folder would otherwise look like a clean one.
func TestBackfillReadNothingExits2(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty folder", nil, "read no record: no log file"},
		{"only text files", map[string]string{"notes.txt": "hello", "README": "x"}, "read no record: no log file"},
		{"every record malformed", map[string]string{"a.json": `{"Records":[{"eventName":"AssumeRole"},{"eventVersion":"1.08"}]}`},
			"read no record: every record (2) was malformed"},
		{"every line malformed", map[string]string{"a.jsonl": "{\"not\":\"a record\"}\n[1,2]\n"}, "read no record: every record (2) was malformed"},
		{"a log without records", map[string]string{"a.json": `{"Records":[]}`}, "read no record: the source held no record in the window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			summary := filepath.Join(t.TempDir(), "summary.json")
			res := runBackfill(t, "--source", "file:"+dir, "--table", "t", "--since", "30d", "--quiet", "--summary-json", summary)
			if res.code != exitError {
				t.Errorf("exit %d, want %d", res.code, exitError)
			}
			if !strings.Contains(res.stderr, "backfill: "+tt.want) || !strings.Contains(res.stderr, "problem         "+tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, res.stderr)
			}
			if s := readSummaryJSON(t, summary); len(s.Problems) != 1 || !strings.HasPrefix(s.Problems[0], tt.want) {
				t.Errorf("summary problems %q, want %q", s.Problems, tt.want)
			}
		})
	}
}

// TestBackfillUnreadableFilesReadTheRest: files that cannot be opened (a
// dangling symlink, a symlink loop; root ignores permission bits) are
// listed in the summary, each path once in its message, the files after
// them are read, and the run exits 2.
func TestBackfillUnreadableFilesReadTheRest(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 13, Events: 40, Now: testNow})
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "nowhere.json"), filepath.Join(dir, "a-dangling.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "b-loop.json"), filepath.Join(dir, "b-loop.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c-good.json.gz"), corpus.LogFile(c.Events, true), 0o600); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res := runBackfill(t, append([]string{"--source", "file:" + dir, "--table", table, "--summary-json", summary}, window(c)...)...)
	if res.code != exitError {
		t.Errorf("exit %d, want %d", res.code, exitError)
	}
	assertFindings(t, c, res, nil)
	s := readSummaryJSON(t, summary)
	var paths []string
	for _, u := range s.UnreadableFiles {
		paths = append(paths, filepath.Base(u.Path))
		if n := strings.Count(u.Error, u.Path); n != 1 {
			t.Errorf("message names the path %d times: %s", n, u.Error)
		}
	}
	if !slices.Equal(paths, []string{"a-dangling.json", "b-loop.json"}) {
		t.Errorf("unreadable files %q, want the dangling symlink and the loop", paths)
	}
	if s.InScope != int64(len(c.Events)) {
		t.Errorf("in scope %d, want %d: the file after the unreadable ones was not read", s.InScope, len(c.Events))
	}
	if !strings.Contains(res.stderr, "unreadable      2") || !strings.Contains(res.stderr, "could not be read") {
		t.Errorf("stderr:\n%s", res.stderr)
	}
}

// TestBackfillRegionsAppliesToFiles: --regions keeps a file's records of
// those regions only (the others count as out of scope), as it does for
// LookupEvents and the S3 archive, instead of being shown and ignored.
func TestBackfillRegionsAppliesToFiles(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 14, Events: 80, Now: testNow, Window: 72 * time.Hour,
		Retention: 30 * 24 * time.Hour, Regions: []string{"us-east-1", "eu-west-1"}})
	var inEU int64
	for _, ev := range c.Events {
		if ev.Region == "eu-west-1" {
			inEU++
		}
	}
	if inEU == 0 || inEU == int64(len(c.Events)) {
		t.Fatalf("corpus has %d of %d events in eu-west-1: want both regions", inEU, len(c.Events))
	}
	for _, name := range []string{"trail.json.gz", "lines.jsonl"} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), name)
			body := corpus.LogFile(c.Events, true)
			if name == "lines.jsonl" {
				body = corpus.JSONLines(c.Events)
			}
			if err := os.WriteFile(file, body, 0o600); err != nil {
				t.Fatal(err)
			}
			summary := filepath.Join(t.TempDir(), "summary.json")
			res := runBackfill(t, append([]string{"--source", "file:" + file, "--table", table, "--regions", "eu-west-1", "--session-retention", "30d",
				"--summary-json", summary}, window(c)...)...)
			if res.code == exitError {
				t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
			}
			assertFindings(t, c, res, func(ev corpus.Event) bool { return ev.Region == "eu-west-1" })
			s := readSummaryJSON(t, summary)
			if s.InScope != inEU || s.OutOfScope != int64(len(c.Events))-inEU {
				t.Errorf("in scope %d, out of scope %d; want %d and %d", s.InScope, s.OutOfScope, inEU, int64(len(c.Events))-inEU)
			}
		})
	}
}

// edgeRecord is an in-scope AssumeRole record by user/<user> at eventTime,
// with the given id fields (`"eventID":"x",` ...), for the edge-case files.
func edgeRecord(user, eventTime, ids string) string {
	return `{"eventVersion":"1.08",` + ids + `"eventTime":` + eventTime + `,"eventSource":"sts.amazonaws.com","eventName":"AssumeRole",` +
		`"awsRegion":"us-east-1","recipientAccountId":"111122223333","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15",` +
		`"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/` + user + `","accountId":"111122223333"},` +
		`"requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/Admin","roleSessionName":"` + user + `"},` +
		`"responseElements":{"assumedRoleUser":{"arn":"arn:aws:sts::111122223333:assumed-role/Admin/` + user + `"}}}`
}

// TestBackfillRecordEdges: records real exporters and archives hold, read
// end to end. Records without any id get distinct finding ids derived from
// their content (said in the finding); other services' EventBridge events
// are out of scope, not rejected; a missing, null or empty eventTime is said
// in words with the event named; a null record is "a null record"; the
// exporter's "YYYY-MM-DD HH:MM:SSZ" is read; a record over the cap is
// refused the same way in a .json file as on a .jsonl line.
func TestBackfillRecordEdges(t *testing.T) {
	_, table := loadCorpus(t, corpus.Config{Seed: 15, Events: 1, Now: testNow})
	const when = `"2026-10-31T10:00:00Z"`
	huge := strings.Replace(edgeRecord("huge", when, `"eventID":"big",`), `"aws-cli/2.15"`, `"`+strings.Repeat("x", 9<<20)+`"`, 1)
	files := map[string]string{
		"a-noids.json": `{"Records":[` + edgeRecord("alice", when, "") + `,` + edgeRecord("bob", when, "") + `,null,` +
			edgeRecord("carol", `"2026-10-31 11:00:00Z"`, `"eventID":"z-form",`) + `]}`,
		"b-times.jsonl": edgeRecord("dave", `null`, `"eventID":"t-null",`) + "\n" +
			edgeRecord("erin", `""`, `"eventID":"t-empty",`) + "\n" +
			strings.Replace(edgeRecord("frank", when, `"eventID":"t-missing",`), `"eventTime":"2026-10-31T10:00:00Z",`, "", 1) + "\n" +
			"null\n" +
			`{"version":"0","id":"s3-1","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2026-10-31T10:00:00Z","region":"us-east-1","detail":{"bucket":{"name":"b"}}}` + "\n" +
			`{"version":"0","id":"s3-2","detail-type":"AWS API Call via CloudTrail","source":"aws.s3","account":"111122223333","time":"2026-10-31T10:00:00Z","region":"us-east-1","detail":{"eventSource":"s3.amazonaws.com","eventName":"PutObject","eventTime":"2026-10-31T10:00:00Z","eventID":"s3-put"}}` + "\n" +
			huge + "\n",
		"c-huge.json": `{"Records":[` + edgeRecord("gina", when, `"eventID":"before-huge",`) + `,` + huge + `]}`,
	}
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	summary := filepath.Join(t.TempDir(), "summary.json")
	res := runBackfill(t, "--source", "file:"+dir, "--table", table, "--since", "30d", "--quiet", "--fail-on", "critical", "--summary-json", summary)
	if res.code != exitClean {
		t.Errorf("exit %d, want %d; stderr:\n%s", res.code, exitClean, res.stderr)
	}

	ids := map[string]string{} // finding_id -> caller
	for _, f := range res.findings {
		if f.Event.ID == "" && f.FindingIDBasis != "content" {
			t.Errorf("finding %s of a record without ids: finding_id_basis %q, want content", f.FindingID, f.FindingIDBasis)
		}
		if f.Event.ID != "" && f.FindingIDBasis != "" {
			t.Errorf("finding of event %s: finding_id_basis %q, want none", f.Event.ID, f.FindingIDBasis)
		}
		if prev, dup := ids[f.FindingID]; dup {
			t.Errorf("finding id %s shared by %s and %s", f.FindingID, prev, f.Principal.ARN)
		}
		ids[f.FindingID] = f.Principal.ARN
	}
	if len(res.findings) != 4 { // alice, bob, carol (z-form), gina (before-huge)
		t.Errorf("%d findings, want 4 (alice, bob, carol, gina): %v", len(res.findings), ids)
	}

	s := readSummaryJSON(t, summary)
	// scanned: 4 (a-noids, one null) + 7 (b-times) + 2 (c-huge: the huge
	// record ends the file); malformed: 1 + 5 + 1.
	if s.EventsScanned != 13 || s.InScope != 4 || s.OutOfScope != 2 || s.Rejected != 0 || s.Malformed != 7 {
		t.Errorf("scanned %d in scope %d out of scope %d rejected %d malformed %d; want 13, 4, 2, 0, 7",
			s.EventsScanned, s.InScope, s.OutOfScope, s.Rejected, s.Malformed)
	}
	for _, want := range []string{
		"a null record",
		"event t-null (AssumeRole): no eventTime",
		"event t-empty (AssumeRole): no eventTime",
		"event t-missing (AssumeRole): no eventTime",
		"line 7: record over 8388608 bytes, the cap for one record",
		"record over 8388608 bytes, the cap for one record; the rest of the file is not read",
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr does not say %q", want)
		}
	}
	for _, never := range []string{"2006-01-02", "parsing time", "aws.s3"} {
		if strings.Contains(res.stderr, never) {
			t.Errorf("stderr says %q:\n%s", never, res.stderr)
		}
	}
}

// TestBackfillSinkRefusalInSummary: a sink that refuses findings (a webhook
// answering 401) makes the run exit 2, and the summary (stderr and
// --summary-json) says per sink what was delivered and what failed.
func TestBackfillSinkRefusalInSummary(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 15, Events: 40, Now: testNow})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trail.json"), corpus.LogFile(c.Events, false), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := sinkfake.NewWebhook(t, []byte("the receiver's key"), "X-Sessionwatch-Signature-256")
	file := filepath.Join(t.TempDir(), "findings.jsonl")
	summary := filepath.Join(t.TempDir(), "summary.json")
	code, _, stderr := runRaw(map[string]string{"SESSIONWATCH_WEBHOOK_SECRET": "another key"},
		append([]string{"--source", "file:" + dir, "--table", table, "--quiet", "--summary-json", summary,
			"--sink", "file:" + file, "--sink", "webhook:" + hook.URL}, window(c)...)...)
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	s := readSummaryJSON(t, summary)
	if len(s.Deliveries) != 2 {
		t.Fatalf("deliveries %+v, want one per sink", s.Deliveries)
	}
	fileD, hookD := s.Deliveries[0], s.Deliveries[1]
	if !strings.HasPrefix(fileD.Sink, "file:") || fileD.Delivered == 0 || fileD.Failed != 0 {
		t.Errorf("file sink: %+v, want delivered > 0 and none failed", fileD)
	}
	if !strings.HasPrefix(hookD.Sink, "webhook:") || hookD.Delivered != 0 || hookD.Failed == 0 {
		t.Errorf("webhook sink: %+v, want none delivered and some failed", hookD)
	}
	want := fmt.Sprintf("sink %s: 0 delivered, %d failed", hookD.Sink, hookD.Failed)
	if !strings.Contains(stderr, want) || !strings.Contains(stderr, "sink "+hookD.Sink+" refused") {
		t.Errorf("stderr does not say which sink failed (%q):\n%s", want, stderr)
	}
}
