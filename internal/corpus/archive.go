package corpus

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Archive defaults.
const (
	// ArchiveBucket is the bucket named inside the digest file.
	ArchiveBucket = "sessionwatch-trail"
	// DefaultPerFile is the records per log file when perFile < 1.
	DefaultPerFile = 100
	trailName      = "sessionwatch"
)

// File is one object of a trail archive: a slash-separated key and its
// (gzip-compressed) body.
type File struct {
	Key  string
	Body []byte
}

// Archive lays out every event of c (in-scope and ignored) as a CloudTrail
// trail writes them to S3:
//
//	AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<16 chars>.json.gz
//
// one or more files per account, region and hour of event time, at most
// perFile records each (DefaultPerFile when perFile < 1), each file a
// gzip-compressed {"Records":[…]} stamped a few minutes after its newest
// event. It adds one digest file under AWSLogs/<account>/CloudTrail-Digest/,
// which holds no Records and which a reader must skip. Log files come first,
// ordered by key; the digest file is last.
func Archive(c *Corpus, perFile int) []File {
	if perFile < 1 {
		perFile = DefaultPerFile
	}
	type group struct {
		account, region string
		hour            time.Time
		events          []Event
	}
	var groups []*group
	index := map[string]*group{}
	for _, ev := range c.All() {
		hour := ev.Time.UTC().Truncate(time.Hour)
		k := ev.Account + "/" + ev.Region + "/" + hour.Format(time.RFC3339)
		gr := index[k]
		if gr == nil {
			gr = &group{account: ev.Account, region: ev.Region, hour: hour}
			index[k] = gr
			groups = append(groups, gr)
		}
		gr.events = append(gr.events, ev)
	}

	type logFile struct {
		File
		account, region string
		raw             []byte
		oldest, newest  time.Time
	}
	var logs []logFile
	for _, gr := range groups {
		for i := 0; i < len(gr.events); i += perFile {
			chunk := gr.events[i:min(i+perFile, len(gr.events))]
			oldest, newest := chunk[0].Time.UTC(), chunk[len(chunk)-1].Time.UTC()
			delivered := newest.Add(5 * time.Minute).Truncate(time.Minute)
			suffix := base62ID(16, "log-file", gr.account, gr.region, chunk[0].ID, fmt.Sprint(i))
			key := fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%s.json.gz",
				gr.account, gr.region, delivered.Format("2006/01/02"),
				gr.account, gr.region, delivered.Format("20060102T1504Z"), suffix)
			raw := LogFile(chunk, false)
			logs = append(logs, logFile{
				File: File{Key: key, Body: gzipBytes(raw)}, account: gr.account, region: gr.region,
				raw: raw, oldest: oldest, newest: newest,
			})
		}
	}
	slices.SortFunc(logs, func(a, b logFile) int { return cmp.Compare(a.Key, b.Key) })

	// The digest covers the log files of the first account and region.
	account, region := c.Config.Accounts[0], c.Config.Regions[0]
	if len(logs) > 0 {
		account, region = logs[0].account, logs[0].region
	}
	type digestLog struct {
		S3Bucket        string `json:"s3Bucket"`
		S3Object        string `json:"s3Object"`
		HashValue       string `json:"hashValue"`
		HashAlgorithm   string `json:"hashAlgorithm"`
		NewestEventTime string `json:"newestEventTime"`
		OldestEventTime string `json:"oldestEventTime"`
	}
	listed := []digestLog{}
	end := c.Config.Now.UTC().Truncate(time.Hour)
	var oldest, newest time.Time
	for _, lf := range logs {
		if lf.account != account || lf.region != region {
			continue
		}
		sum := sha256.Sum256(lf.raw)
		listed = append(listed, digestLog{
			S3Bucket: ArchiveBucket, S3Object: lf.Key, HashValue: hex.EncodeToString(sum[:]), HashAlgorithm: "SHA-256",
			NewestEventTime: lf.newest.Format(eventTimeLayout), OldestEventTime: lf.oldest.Format(eventTimeLayout),
		})
		if oldest.IsZero() || lf.oldest.Before(oldest) {
			oldest = lf.oldest
		}
		if lf.newest.After(newest) {
			newest = lf.newest
		}
	}
	if !newest.IsZero() {
		end = newest.Truncate(time.Hour).Add(time.Hour)
	}
	digestKey := fmt.Sprintf("AWSLogs/%s/CloudTrail-Digest/%s/%s/%s_CloudTrail-Digest_%s_%s_%s_%s.json.gz",
		account, region, end.Format("2006/01/02"), account, region, trailName, region, end.Format("20060102T150405Z"))
	timeOrNil := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.Format(eventTimeLayout)
	}
	fingerprint := digest("digest-key", account)
	body := marshal(struct {
		AWSAccountID               string      `json:"awsAccountId"`
		DigestStartTime            string      `json:"digestStartTime"`
		DigestEndTime              string      `json:"digestEndTime"`
		DigestS3Bucket             string      `json:"digestS3Bucket"`
		DigestS3Object             string      `json:"digestS3Object"`
		DigestPublicKeyFingerprint string      `json:"digestPublicKeyFingerprint"`
		DigestSignatureAlgorithm   string      `json:"digestSignatureAlgorithm"`
		NewestEventTime            any         `json:"newestEventTime"`
		OldestEventTime            any         `json:"oldestEventTime"`
		PreviousDigestS3Bucket     any         `json:"previousDigestS3Bucket"`
		PreviousDigestS3Object     any         `json:"previousDigestS3Object"`
		PreviousDigestHashValue    any         `json:"previousDigestHashValue"`
		PreviousDigestHashAlgo     any         `json:"previousDigestHashAlgorithm"`
		PreviousDigestSignature    any         `json:"previousDigestSignature"`
		LogFiles                   []digestLog `json:"logFiles"`
	}{
		AWSAccountID: account, DigestStartTime: end.Add(-time.Hour).Format(eventTimeLayout), DigestEndTime: end.Format(eventTimeLayout),
		DigestS3Bucket: ArchiveBucket, DigestS3Object: digestKey,
		DigestPublicKeyFingerprint: hexString(fingerprint[:16]),
		DigestSignatureAlgorithm:   "SHA256withRSA",
		NewestEventTime:            timeOrNil(newest), OldestEventTime: timeOrNil(oldest),
		LogFiles: listed,
	})

	files := make([]File, 0, len(logs)+1)
	for _, lf := range logs {
		files = append(files, lf.File)
	}
	return append(files, File{Key: digestKey, Body: gzipBytes(body)})
}

// WriteArchive writes Archive(c, perFile) under dir (keys become relative
// paths) and returns the keys written, in Archive's order.
func WriteArchive(dir string, c *Corpus, perFile int) ([]string, error) {
	files := Archive(c, perFile)
	keys := make([]string, 0, len(files))
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return keys, fmt.Errorf("corpus: write archive: %w", err)
		}
		if err := os.WriteFile(path, f.Body, 0o644); err != nil {
			return keys, fmt.Errorf("corpus: write archive: %w", err)
		}
		keys = append(keys, f.Key)
	}
	return keys, nil
}
