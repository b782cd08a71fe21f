package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
)

const testBucket = "org-trail"

// startS3 serves files (keys renamed by rekey) from an in-process gofakes3
// and points the SDK at it.
func startS3(t testing.TB, files []corpus.File, rekey func(string) string) *s3mem.Backend {
	t.Helper()
	backend := s3mem.New()
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		key := f.Key
		if rekey != nil {
			key = rekey(key)
		}
		if _, err := backend.PutObject(testBucket, key, nil, bytes.NewReader(f.Body), int64(len(f.Body)), nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	return backend
}

// TestS3ArchiveReproducesCorpus reads a generated trail archive from S3, as
// a trail writes it under a prefix and as an organization trail writes it,
// and finds exactly the expected findings; digests are skipped.
func TestS3ArchiveReproducesCorpus(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 31, Events: 500, Now: testNow, Window: 72 * time.Hour,
		Accounts: twoAccounts, Regions: []string{"us-east-1", "eu-west-1"}, OutOfScope: 30})
	files := corpus.Archive(c, 40)
	for _, layout := range []struct {
		name, prefix string
		rekey        func(string) string
	}{
		{"trail prefix", "trails/main", func(k string) string { return "trails/main/" + k }},
		{"organization trail", "", func(k string) string {
			return strings.Replace(k, "AWSLogs/", "AWSLogs/o-a1b2c3d4e5/", 1)
		}},
	} {
		t.Run(layout.name, func(t *testing.T) {
			startS3(t, files, layout.rekey)
			uri := "s3://" + testBucket
			if layout.prefix != "" {
				uri += "/" + layout.prefix
			}
			res := runBackfill(t, append([]string{"--source", uri, "--s3-path-style", "--table", table}, window(c)...)...)
			if res.code != exitFindings {
				t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
			}
			assertFindings(t, c, res, nil)
			if !strings.Contains(res.stderr, "malformed       0") || !strings.Contains(res.stderr, "pages/objects   "+strconv.Itoa(len(files)-1)) {
				t.Errorf("summary (every log object read, the digest skipped):\n%s", res.stderr)
			}
		})
	}

	// A one-day window lists only the days it needs and keeps the events
	// inside it, whatever file they share.
	t.Run("window", func(t *testing.T) {
		startS3(t, files, nil)
		since := testNow.Add(-24 * time.Hour)
		res := runBackfill(t, "--source", "s3://"+testBucket, "--s3-path-style", "--table", table, "--accounts", twoAccounts[1],
			"--regions", "eu-west-1", "--since", since.Format(time.RFC3339), "--until", testNow.Format(time.RFC3339))
		assertFindings(t, c, res, func(ev corpus.Event) bool {
			return ev.Account == twoAccounts[1] && ev.Region == "eu-west-1" && !ev.Time.Before(since)
		})
		if len(res.findings) == 0 {
			t.Error("no finding in the window: the test proves nothing")
		}
	})
}

// TestS3ResumesFromCheckpoint resumes an archive read from a checkpoint
// that says the first half of the objects is done: only the other half is
// read, and the run marks the checkpoint complete.
func TestS3ResumesFromCheckpoint(t *testing.T) {
	c, table := loadCorpus(t, corpus.Config{Seed: 32, Events: 200, Now: testNow, Window: 48 * time.Hour})
	files := corpus.Archive(c, 20)
	startS3(t, files, nil)
	logs := files[:len(files)-1] // the digest is last
	through := logs[len(logs)/2-1].Key
	left := map[string]bool{}
	for _, f := range logs[len(logs)/2:] {
		zr, err := gzip.NewReader(bytes.NewReader(f.Body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Records []struct{ EventID string } }
		if err := json.NewDecoder(zr).Decode(&body); err != nil {
			t.Fatal(err)
		}
		for _, r := range body.Records {
			left[r.EventID] = true
		}
	}
	since, until := c.Span()
	since, until = since.Add(-time.Hour), until.Add(time.Hour)
	cpPath := filepath.Join(t.TempDir(), "ckpt.json")
	args := []string{"--source", "s3://" + testBucket, "--s3-path-style", "--table", table, "--checkpoint", cpPath, "--since", "1d"}
	o, err := parseOptions(args, env{stderr: io.Discard, lookupEnv: func(string) (string, bool) { return "", false }, now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	cp := fmt.Sprintf(`{"version":1,"source":"s3://%s","scope":%q,"since":%q,"until":%q,"complete":false,"keys":{"done_through":%q}}`,
		testBucket, o.scope(), since.Format(time.RFC3339), until.Format(time.RFC3339), through)
	if err := os.WriteFile(cpPath, []byte(cp), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runBackfill(t, args...)
	if res.code == exitError {
		t.Fatalf("exit %d; stderr:\n%s", res.code, res.stderr)
	}
	assertFindings(t, c, res, func(ev corpus.Event) bool { return left[ev.ID] })
	if !strings.Contains(res.stderr, "pages/objects   "+strconv.Itoa(len(logs)-len(logs)/2)) {
		t.Errorf("summary: want %d objects read:\n%s", len(logs)-len(logs)/2, res.stderr)
	}
	if b, _ := os.ReadFile(cpPath); !strings.Contains(string(b), `"complete": true`) {
		t.Errorf("checkpoint not complete:\n%s", b)
	}
}
