package corpus_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
)

var logKeyRE = regexp.MustCompile(`^AWSLogs/(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4}/\d{2}/\d{2})/(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_[A-Za-z0-9]{16}\.json\.gz$`)

func gunzip(t *testing.T, p []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteArchive(t *testing.T) {
	t.Parallel()
	c := generate(t, corpus.Config{
		Seed: 9, Events: 300, OutOfScope: 20, Window: 6 * time.Hour,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1"},
	})
	const perFile = 7
	dir := t.TempDir()
	keys, err := corpus.WriteArchive(dir, c, perFile)
	if err != nil {
		t.Fatal(err)
	}

	var onDisk []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			onDisk = append(onDisk, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != len(keys) {
		t.Fatalf("%d files on disk, %d keys returned", len(onDisk), len(keys))
	}

	want := map[string][]byte{}
	for _, ev := range c.All() {
		want[ev.ID] = ev.Record
	}
	bodies := map[string][]byte{} // uncompressed, by key
	var digests []string
	for _, key := range keys {
		gz, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil {
			t.Fatal(err)
		}
		body := gunzip(t, gz)
		bodies[key] = body
		if strings.Contains(key, "/CloudTrail-Digest/") {
			digests = append(digests, key)
			continue
		}
		m := logKeyRE.FindStringSubmatch(key)
		if m == nil || m[1] != m[4] || m[2] != m[5] {
			t.Errorf("log key %q does not follow the trail layout", key)
			continue
		}
		stamp, _ := time.Parse("20060102T1504Z", m[6])
		if stamp.Format("2006/01/02") != m[3] {
			t.Errorf("%s: date folder %s, stamp %s", key, m[3], m[6])
		}
		var f struct{ Records []json.RawMessage }
		if err := json.Unmarshal(body, &f); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if len(f.Records) == 0 || len(f.Records) > perFile {
			t.Errorf("%s: %d records (at most %d)", key, len(f.Records), perFile)
		}
		for _, r := range f.Records {
			var rec struct {
				EventID, EventTime, AWSRegion string
				RecipientAccountID            string `json:"recipientAccountId"`
			}
			if err := json.Unmarshal(r, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.RecipientAccountID != m[1] || rec.AWSRegion != m[2] {
				t.Errorf("%s holds a record of %s/%s", key, rec.RecipientAccountID, rec.AWSRegion)
			}
			if et, _ := time.Parse(time.RFC3339, rec.EventTime); !et.Before(stamp) {
				t.Errorf("%s holds an event of %s, after its delivery", key, rec.EventTime)
			}
			if w, ok := want[rec.EventID]; !ok || !bytes.Equal(w, r) {
				t.Errorf("%s: record %s unknown, repeated or altered", key, rec.EventID)
			}
			delete(want, rec.EventID)
		}
	}
	if len(want) != 0 {
		t.Errorf("%d events missing from the archive", len(want))
	}

	if len(digests) != 1 || digests[0] != keys[len(keys)-1] {
		t.Fatalf("digest keys %v, want exactly one, last", digests)
	}
	var dg map[string]any
	if err := json.Unmarshal(bodies[digests[0]], &dg); err != nil {
		t.Fatal(err)
	}
	if _, ok := dg["Records"]; ok {
		t.Error("digest file has Records")
	}
	if dg["digestS3Object"] != digests[0] {
		t.Errorf("digestS3Object %v", dg["digestS3Object"])
	}
	logFiles, _ := dg["logFiles"].([]any)
	if len(logFiles) == 0 {
		t.Fatal("digest lists no log file")
	}
	for _, lf := range logFiles {
		entry := lf.(map[string]any)
		key, _ := entry["s3Object"].(string)
		body, ok := bodies[key]
		sum := sha256.Sum256(body)
		if !ok || entry["hashValue"] != hex.EncodeToString(sum[:]) {
			t.Errorf("digest entry %v does not match the archive", entry)
		}
	}
}

func TestArchiveOfEmptyCorpus(t *testing.T) {
	t.Parallel()
	files := corpus.Archive(generate(t, corpus.Config{}), 0)
	if len(files) != 1 || !strings.Contains(files[0].Key, "/CloudTrail-Digest/") {
		t.Fatalf("files %v, want the digest alone", files)
	}
	if !json.Valid(gunzip(t, files[0].Body)) {
		t.Fatal("digest is not JSON")
	}
}
