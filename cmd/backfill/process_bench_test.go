package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
)

// The whole-process benchmark's archive: fileBenchRecords CloudTrail
// records, one log file per fileBenchPerFile.
const (
	fileBenchRecords = 100_000
	fileBenchPerFile = 500
)

var backfillCPUProfile = flag.String("backfill-cpuprofile", "", "BenchmarkFileBackfillProcess: write each case's backfill CPU profile to this path plus .CASE (its --cpuprofile)")

// BenchmarkFileBackfillProcess runs the built backfill binary over a
// generated trail archive on disk (--source file:, sessions in a dynalite
// table) and measures the whole process: its user+system CPU time, from
// the operating system, per record of the archive. In the same iteration,
// the same records go through a seed-style decode (seedStyleDecode: five
// json.Unmarshal per record into plain structs) in this process, measured
// the same way; ratio is the backfill's CPU over the seed decode's. Each
// run checks that the findings are exactly the corpus's expected ones.
//
// Two archives: sparse, 1 % of the records STS calls (1,000, explained by
// about 500 sessions), as in a real trail, where STS calls are a small
// share; dense, every record an STS call (about 50,800 sessions, 40,000
// findings), the worst case for store reads and per-finding work.
//
//	scripts/with-emulators.sh go test ./cmd/backfill -run '^$' -bench FileBackfillProcess -benchtime 1x -count 5
//
// -backfill-cpuprofile FILE profiles the subprocess (the last iteration's).
func BenchmarkFileBackfillProcess(b *testing.B) {
	for _, bc := range []struct {
		name    string
		inScope int
	}{{"sparse", 1_000}, {"dense", fileBenchRecords}} {
		b.Run(bc.name, func(b *testing.B) { benchFileBackfill(b, bc.name, bc.inScope) })
	}
}

func benchFileBackfill(b *testing.B, name string, inScope int) {
	// The subprocess classifies with the real clock: the corpus is built
	// around it (its verdicts hold within corpus.Margin of Now).
	now := time.Now().UTC().Truncate(time.Second)
	c, table := loadCorpus(b, corpus.Config{Seed: 81, Events: inScope, OutOfScope: fileBenchRecords - inScope,
		Now: now, Window: 72 * time.Hour})
	archive := b.TempDir()
	if _, err := corpus.WriteArchive(archive, c, fileBenchPerFile); err != nil {
		b.Fatal(err)
	}
	records := make([][]byte, 0, len(c.All()))
	for _, ev := range c.All() {
		records = append(records, ev.Record)
	}
	if len(records) != fileBenchRecords {
		b.Fatalf("%d records in the archive, want %d", len(records), fileBenchRecords)
	}
	out := filepath.Join(b.TempDir(), "findings.jsonl")
	args := append([]string{"--source", "file:" + archive, "--table", table, "--quiet", "--sink", "file:" + out}, window(c)...)
	if *backfillCPUProfile != "" {
		args = append(args, "--cpuprofile", *backfillCPUProfile+"."+name)
	}
	backfillBinary(b) // built before the clock starts

	var backfillCPU, seedCPU time.Duration
	for b.Loop() {
		if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
		p := startBackfill(b, args...)
		if code := p.wait(b, 5*time.Minute); code != exitFindings {
			b.Fatalf("backfill: exit %d, want %d; stderr:\n%s", code, exitFindings, p.stderr.String())
		}
		ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no rusage for the backfill process")
		}
		backfillCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		assertFindings(b, c, result{findings: readFindings(b, out), stderr: p.stderr.String()}, nil)
		if b.Failed() {
			b.FailNow()
		}

		cpu0 := cpuTime(b)
		for _, r := range records {
			if err := seedStyleDecode(r); err != nil {
				b.Fatal(err)
			}
		}
		seedCPU += cpuTime(b) - cpu0
	}
	n := float64(b.N) * float64(len(records))
	b.ReportMetric(float64(backfillCPU.Nanoseconds())/1e3/n, "backfill-cpu-µs/event")
	b.ReportMetric(float64(seedCPU.Nanoseconds())/1e3/n, "seed-cpu-µs/event")
	b.ReportMetric(float64(backfillCPU)/float64(seedCPU), "backfill/seed")
}

// seedStyleDecode is the seed's way of reading a record (Sentinel's
// audit/untracked.go): the whole record unmarshalled again for each group
// of fields it needs, five times, each into a plain struct.
func seedStyleDecode(record []byte) error {
	var source struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
	}
	var ids struct {
		EventID   string `json:"eventID"`
		EventTime string `json:"eventTime"`
		RequestID string `json:"requestID"`
		Recipient string `json:"recipientAccountId"`
	}
	var caller struct {
		UserIdentity struct {
			Type           string `json:"type"`
			ARN            string `json:"arn"`
			PrincipalID    string `json:"principalId"`
			SessionContext struct {
				SourceIdentity string `json:"sourceIdentity"`
			} `json:"sessionContext"`
		} `json:"userIdentity"`
	}
	var request struct {
		RequestParameters struct {
			RoleARN         string `json:"roleArn"`
			RoleSessionName string `json:"roleSessionName"`
			SourceIdentity  string `json:"sourceIdentity"`
		} `json:"requestParameters"`
	}
	var response struct {
		ErrorCode        string `json:"errorCode"`
		ResponseElements struct {
			SourceIdentity string `json:"sourceIdentity"`
		} `json:"responseElements"`
	}
	for _, dst := range []any{&source, &ids, &caller, &request, &response} {
		if err := json.Unmarshal(record, dst); err != nil {
			return err
		}
	}
	_, err := time.Parse(time.RFC3339, ids.EventTime)
	return err
}
