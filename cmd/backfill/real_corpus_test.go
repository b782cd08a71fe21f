package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/internal/testenv"
)

// realCorpusEnv names extra folders of public CloudTrail records (joined by
// the OS path-list separator) that TestBackfillAccountsForRealCorpus reads
// besides the committed ones; see docs/REAL-CORPUS.md.
const realCorpusEnv = "SESSIONWATCH_REAL_CORPUS"

// TestBackfillAccountsForRealCorpus runs the file backfill over public
// CloudTrail records that nobody here wrote, against an empty session
// table, and checks that every record is accounted for, that every
// in-scope event is a finding (no session exists), and that no secret of
// the input reaches stdout or stderr.
func TestBackfillAccountsForRealCorpus(t *testing.T) {
	dirs := []string{filepath.Join("..", "..", "testdata", "cloudtrail-public")}
	if extra := os.Getenv(realCorpusEnv); extra != "" {
		dirs = append(dirs, filepath.SplitList(extra)...)
	}
	ctx := context.Background()
	client := testenv.DynamoClient(t)
	table := testenv.UniqueTableName(t)
	if err := testenv.CreateSessionTable(ctx, client, table); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := countCorpus(t, dir)
			if want.records == 0 {
				t.Fatalf("%s holds no record", dir)
			}
			summary := filepath.Join(t.TempDir(), "summary.json")
			// The window reaches back to 2010, before any record here; the
			// session retention is as long so that old events are still
			// classified as they would be today.
			code, stdout, stderr := runRaw(nil, "--source", "file:"+dir, "--table", table, "--since", "2013-11-13",
				"--session-retention", "9000d", "--quiet", "--summary-json", summary)
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("stderr shows a panic:\n%s", stderr)
			}
			if code != exitFindings && code != exitClean {
				t.Errorf("exit %d; stderr:\n%s", code, stderr)
			}
			s := readSummaryJSON(t, summary)
			t.Logf("%s: %d files, %d records: in scope %d, out of scope %d, malformed %d, rejected %d, outside window %d, findings %d, verdicts %v; %d input secrets checked",
				dir, want.files, want.records, s.InScope, s.OutOfScope, s.Malformed, s.Rejected, s.OutsideWindow, s.Findings, s.Verdicts, len(want.secrets))
			if s.EventsScanned != want.records {
				t.Errorf("scanned %d, but the files hold %d records", s.EventsScanned, want.records)
			}
			if sum := s.InScope + s.OutOfScope + s.Malformed + s.Rejected + s.OutsideWindow; sum != s.EventsScanned {
				t.Errorf("in scope %d + out of scope %d + malformed %d + rejected %d + outside window %d = %d, want scanned %d",
					s.InScope, s.OutOfScope, s.Malformed, s.Rejected, s.OutsideWindow, sum, s.EventsScanned)
			}
			if s.InScope != want.inScope {
				t.Errorf("in scope %d, but the files hold %d AssumeRole* calls by principals", s.InScope, want.inScope)
			}
			// Against an empty table no event is tracked: each in-scope
			// event is a finding, once (duplicates are the same event seen
			// in two files).
			if s.Tracked != 0 || s.Findings != s.InScope-s.Duplicates {
				t.Errorf("findings %d, tracked %d, want in scope %d less duplicates %d", s.Findings, s.Tracked, s.InScope, s.Duplicates)
			}
			if n := int64(strings.Count(stdout, "\n")); n != s.Findings {
				t.Errorf("stdout has %d finding lines, summary says %d", n, s.Findings)
			}
			if len(s.UnreadableFiles) != 0 || len(s.Problems) != 0 {
				t.Errorf("unreadable %v, problems %q", s.UnreadableFiles, s.Problems)
			}
			for _, secret := range want.secrets {
				if strings.Contains(stdout, secret) || strings.Contains(stderr, secret) {
					t.Errorf("a secret of the input (%.6s…) appears in the output", secret)
				}
			}
		})
	}
}

// corpusCount is what a test counts in a corpus folder by itself, without
// the code under test.
type corpusCount struct {
	files, records, inScope int64
	secrets                 []string
}

// countCorpus reads every log file under dir as the file source documents
// them: .json(.gz) holds {"Records":[…]}, .jsonl/.ndjson(.gz) one message a
// line (a bare record or an EventBridge envelope of one).
func countCorpus(t *testing.T, dir string) corpusCount {
	t.Helper()
	var c corpusCount
	secretKey := secretPattern()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimSuffix(strings.ToLower(path), ".gz")
		lines := strings.HasSuffix(name, ".jsonl") || strings.HasSuffix(name, ".ndjson")
		if !lines && !strings.HasSuffix(name, ".json") || strings.Contains(filepath.ToSlash(path), "CloudTrail-Digest/") {
			return nil
		}
		body, err := readMaybeGzip(path)
		if err != nil {
			return err
		}
		c.files++
		var records []json.RawMessage
		if lines {
			sc := bufio.NewScanner(bytes.NewReader(body))
			sc.Buffer(nil, 16<<20)
			for sc.Scan() {
				if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
					records = append(records, append(json.RawMessage(nil), line...))
				}
			}
			if err := sc.Err(); err != nil {
				return err
			}
		} else {
			var log struct {
				Records []json.RawMessage `json:"Records"`
			}
			if err := json.Unmarshal(body, &log); err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
			records = log.Records
		}
		for _, raw := range records {
			c.records++
			var rec struct {
				EventName    string                `json:"eventName"`
				EventSource  string                `json:"eventSource"`
				UserIdentity struct{ Type string } `json:"userIdentity"`
				Detail       json.RawMessage       `json:"detail"`
			}
			if json.Unmarshal(raw, &rec) == nil && len(rec.Detail) > 0 {
				_ = json.Unmarshal(rec.Detail, &rec)
			}
			// In scope: an STS AssumeRole* call made by a principal (calls
			// by AWS services are out of scope by default).
			switch rec.EventName {
			case "AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity":
				if rec.EventSource == "sts.amazonaws.com" && rec.UserIdentity.Type != "AWSService" {
					c.inScope++
				}
			}
			c.secrets = append(c.secrets, secretValues(secretKey, raw)...)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readMaybeGzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	return io.ReadAll(r)
}

// secretPattern matches a secret-looking field of a record and its value.
func secretPattern() *regexp.Regexp {
	return regexp.MustCompile(`(?i)"(secretAccessKey|sessionToken|password)"\s*:\s*"([^"]{16,})"`)
}

// secretValues returns the values of a record that must never be printed
// (a redacted placeholder does not count); secretKey matches their names.
func secretValues(secretKey *regexp.Regexp, raw []byte) []string {
	var out []string
	for _, m := range secretKey.FindAllSubmatch(raw, -1) {
		if v := string(m[2]); !strings.Contains(strings.ToUpper(v), "HIDDEN") && !strings.Contains(strings.ToUpper(v), "REDACTED") {
			out = append(out, v)
		}
	}
	return out
}

// TestSecretValues: the accounting test's secret detector finds real
// token values and ignores redactions, so its "no secret in the output"
// check has something to look for.
func TestSecretValues(t *testing.T) {
	secretKey := secretPattern()
	tests := []struct {
		record string
		want   []string
	}{
		{`{"credentials":{"sessionToken":"AgoGb3JpZ2luEHoaCXVzLWVhc3QtMQ","accessKeyId":"ASIAEXAMPLE"}}`, []string{"AgoGb3JpZ2luEHoaCXVzLWVhc3QtMQ"}},
		{`{"SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}`, []string{"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		{`{"sessionToken":"REDACTED"}`, nil},
		{`{"password":"**-redacted-**"}`, nil},
		{`{"sessionToken":"HIDDEN_DUE_TO_SECURITY_REASONS"}`, nil},
		{`{"roleSessionName":"AgoGb3JpZ2luEHoaCXVzLWVhc3QtMQ"}`, nil},
	}
	for _, tt := range tests {
		if got := secretValues(secretKey, []byte(tt.record)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.record, got, tt.want)
		}
	}
}
