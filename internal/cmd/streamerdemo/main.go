// Command streamerdemo prepares and reports the streamer demo (make demo,
// scripts/demo.sh) against the local emulators. It refuses to run without
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB, so it never touches a
// real account.
//
//	streamerdemo setup   --dir out/demo     table with sessions, queue with DLQ; writes DIR/env
//	streamerdemo send    --dir out/demo     the sample mix, then a late session
//	streamerdemo wait    --dir out/demo     until the queue is empty and the poison message dead-lettered
//	streamerdemo summary --dir out/demo --metrics URL
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

// The demo's fixed choices.
const (
	seed            = 2026
	inScopeEvents   = 24 // every verdict at least once (corpus.DefaultMix)
	outOfScope      = 3
	maxReceiveCount = 2
	lateUser        = "latecomer"
)

var accounts = []string{"111122223333", "444455556666"}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: streamerdemo setup|send|wait|summary --dir DIR [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("streamerdemo "+os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "out/demo", "working directory of the demo")
	metrics := fs.String("metrics", "", "the streamer's ops server, for summary (http://127.0.0.1:PORT)")
	timeout := fs.Duration("timeout", 90*time.Second, "how long wait waits")
	_ = fs.Parse(os.Args[2:])
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "setup":
		err = setup(ctx, *dir)
	case "send":
		err = send(ctx, *dir)
	case "wait":
		err = wait(ctx, *dir, *timeout)
	case "summary":
		err = summary(ctx, *dir, *metrics)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "streamerdemo %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// state is what setup leaves in DIR/env for the other steps and the script.
type state struct {
	QueueURL, DLQURL, Table string
	Now                     time.Time
}

func clients(ctx context.Context) (*sqs.Client, *dynamodb.Client, error) {
	for _, v := range []string{sqstest.EndpointEnv, testenv.EndpointEnv} {
		if os.Getenv(v) == "" {
			return nil, nil, fmt.Errorf("%s is not set: run through scripts/with-emulators.sh", v)
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	return sqs.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg), nil
}

// sample is the demo corpus, the same for every step given the same now.
func sample(now time.Time) (*corpus.Corpus, error) {
	return corpus.Generate(corpus.Config{Seed: seed, Events: inScopeEvents, OutOfScope: outOfScope, Now: now, MinAge: time.Hour, Accounts: accounts})
}

func setup(ctx context.Context, dir string) error {
	q, d, err := clients(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	st := state{Now: time.Now().UTC().Truncate(time.Second), Table: "sentinel-sessions-demo-" + sqstest.RandomSuffix()}
	c, err := sample(st.Now)
	if err != nil {
		return err
	}
	if err := testenv.CreateSessionTable(ctx, d, st.Table); err != nil {
		return err
	}
	if err := testenv.PutSessions(ctx, d, st.Table, c.Sessions); err != nil {
		return err
	}
	queue, err := sqstest.CreateQueue(ctx, q, "sessionwatch-demo-"+sqstest.RandomSuffix(), sqstest.Options{MaxReceiveCount: maxReceiveCount})
	if err != nil {
		return err
	}
	st.QueueURL, st.DLQURL = queue.URL, queue.DLQ.URL
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o644); err != nil {
		return err
	}
	env := fmt.Sprintf("QUEUE_URL=%s\nDLQ_URL=%s\nTABLE=%s\n", st.QueueURL, st.DLQURL, st.Table)
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o644); err != nil {
		return err
	}
	fmt.Printf("  table %s: %d sessions of %d users\n", st.Table, len(c.Sessions), countUsers(c.Sessions))
	fmt.Printf("  queue %s with DLQ %s (redrive after %d receives)\n", queue.Name, queue.DLQ.Name, maxReceiveCount)
	return nil
}

func countUsers(ss []sessions.Session) int {
	users := map[string]bool{}
	for _, s := range ss {
		users[s.User] = true
	}
	return len(users)
}

func loadState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, fmt.Errorf("run setup first: %w", err)
	}
	return st, json.Unmarshal(b, &st)
}

// Extra messages beyond the corpus.
const (
	rejectedEnvelope = `{"version":"0","id":"6f0b1c4e-0000-4000-8000-forged000001","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","account":"999988887777","time":"%s","region":"us-east-1","resources":[],"detail":%s}`
	poisonMessage    = `{"Records":[{"eventVersion":"1.08","eventSource":"sts.amazonaws.com"` // truncated
)

// lateEvent is an AssumeRole whose session the broker writes a moment
// after the call: the orphan grace must keep it from being reported.
func lateEvent(now time.Time) (record []byte, si string) {
	si = "sentinel:" + lateUser + ":direct:1a7e1a7e"
	rec := map[string]any{
		"eventVersion": "1.08", "eventID": "1a7e0000-0000-4000-8000-00000000a7e1", "requestID": "1a7e0000-0000-4000-8000-00000000a7e2",
		"eventTime": now.Format(time.RFC3339), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "eventType": "AwsApiCall",
		"awsRegion": "us-east-1", "recipientAccountId": accounts[0], "sourceIPAddress": "198.51.100.20", "userAgent": "sentinel/1.4",
		"userIdentity":      map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/SentinelBroker/broker", "accountId": accounts[0]},
		"requestParameters": map[string]any{"roleArn": "arn:aws:iam::111122223333:role/SentinelReadOnly", "roleSessionName": lateUser, "sourceIdentity": si},
		"responseElements": map[string]any{
			"sourceIdentity":  si,
			"assumedRoleUser": map[string]any{"arn": "arn:aws:sts::111122223333:assumed-role/SentinelReadOnly/" + lateUser},
			"credentials":     map[string]any{"accessKeyId": "ASIADEMO1A7E1A7E1A7E"},
		},
	}
	record, _ = json.Marshal(rec)
	return record, si
}

func send(ctx context.Context, dir string) error {
	q, d, err := clients(ctx)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	c, err := sample(st.Now)
	if err != nil {
		return err
	}
	queue := &sqstest.Queue{Client: q, Name: "demo", URL: st.QueueURL}
	var msgs [][]byte
	for i, ev := range c.Events {
		env := corpus.EventBridgeEnvelope(ev)
		if i%5 == 4 {
			env = corpus.SNSNotification(env, "", ev.Time)
		}
		msgs = append(msgs, env)
	}
	for _, ev := range c.Ignored {
		msgs = append(msgs, ev.Record) // bare records: counted out of scope
	}
	msgs = append(msgs, fmt.Appendf(nil, rejectedEnvelope, st.Now.Format(time.RFC3339), c.Events[0].Record), []byte(poisonMessage))
	// The late event goes first, on its own, so that the streamer sees it
	// before its session exists.
	eventTime := time.Now().UTC().Truncate(time.Second)
	late, si := lateEvent(eventTime)
	lateMsg := corpus.EventBridgeEnvelope(corpus.Event{ID: "late", Account: accounts[0], Region: "us-east-1", Time: eventTime, Source: "sts.amazonaws.com", Record: late})
	if err := queue.Send(ctx, [][]byte{lateMsg}); err != nil {
		return err
	}
	if err := queue.Send(ctx, msgs); err != nil {
		return err
	}
	msgs = append(msgs, lateMsg)
	counts := c.Counts()
	var parts []string
	for _, v := range classify.AllVerdicts() {
		parts = append(parts, fmt.Sprintf("%s %d", v, counts[v]))
	}
	fmt.Printf("  sent %d messages: %d in-scope events (%s), %d out of scope, 1 forged envelope (account outside the allowlist), 1 poison message, and 1 AssumeRole by %q whose session is written 2 s later\n",
		len(msgs), len(c.Events), strings.Join(parts, ", "), len(c.Ignored), lateUser)
	time.Sleep(time.Until(eventTime.Add(2 * time.Second)))
	written := time.Now().UTC()
	err = testenv.PutSessions(ctx, d, st.Table, []sessions.Session{{
		ID: "sess-latecomer", User: lateUser, Status: "active", SourceIdentity: si, Profile: "readonly",
		StartedAt: eventTime.Add(-500 * time.Millisecond), ExpiresAt: eventTime.Add(time.Hour), CreatedAt: written, UpdatedAt: written,
	}})
	if err != nil {
		return err
	}
	fmt.Printf("  %s's session written %v after the event\n", lateUser, written.Sub(eventTime).Round(100*time.Millisecond))
	return nil
}

func wait(ctx context.Context, dir string, timeout time.Duration) error {
	q, _, err := clients(ctx)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	queue := &sqstest.Queue{Client: q, Name: "demo queue", URL: st.QueueURL}
	dlq := &sqstest.Queue{Client: q, Name: "demo DLQ", URL: st.DLQURL}
	for {
		v, f, err := queue.Depth(ctx)
		if err != nil {
			return err
		}
		dv, df, err := dlq.Depth(ctx)
		if err != nil {
			return err
		}
		if v+f == 0 && dv+df >= 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queue still holds %d+%d messages, DLQ %d: %w", v, f, dv+df, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func summary(ctx context.Context, dir, metricsURL string) error {
	q, _, err := clients(ctx)
	if err != nil {
		return err
	}
	st, err := loadState(dir)
	if err != nil {
		return err
	}
	c, err := sample(st.Now)
	if err != nil {
		return err
	}
	findings, err := readFindings(filepath.Join(dir, "findings.jsonl"))
	if err != nil {
		return err
	}
	fmt.Printf("Findings (%s), one JSON line each (full records in %s):\n", "category, severity, finding_id, event, source_identity", filepath.Join(dir, "findings.jsonl"))
	for _, f := range findings {
		line, _ := json.Marshal(struct {
			Category       classify.Verdict `json:"category"`
			Severity       string           `json:"severity"`
			FindingID      string           `json:"finding_id"`
			Event          string           `json:"event"`
			Account        string           `json:"account"`
			SourceIdentity string           `json:"source_identity"`
		}{f.Category, f.Severity, f.FindingID, f.Event.Name, f.Event.Account, f.SourceIdentity.Value})
		fmt.Println("  " + string(line))
	}

	got := map[classify.Verdict]int{}
	ids := map[string]bool{}
	late := 0
	for _, f := range findings {
		got[f.Category]++
		ids[f.FindingID] = true
		if strings.Contains(f.SourceIdentity.Value, lateUser) {
			late++
		}
	}
	want := map[classify.Verdict]int{}
	for _, ev := range c.Findings() {
		want[ev.Expected]++
	}
	fmt.Println("\nSummary")
	fmt.Printf("  %-22s %8s %8s\n", "category", "expected", "found")
	ok := true
	for _, v := range classify.AllVerdicts() {
		if !v.IsFinding() {
			continue
		}
		mark := ""
		if got[v] != want[v] {
			mark, ok = "  <- mismatch", false
		}
		fmt.Printf("  %-22s %8d %8d%s\n", v, want[v], got[v], mark)
	}
	fmt.Printf("  %-22s %8d %8d\n", "total", len(c.Findings()), len(findings))
	fmt.Printf("  tracked (no finding): %d; distinct finding_ids: %d (a cross-account call logged twice shares one)\n", c.Counts()[classify.Tracked], len(ids))
	fmt.Printf("  late session (%s): %d findings (the orphan grace waited for it)\n", lateUser, late)
	if metricsURL != "" {
		m, err := scrape(metricsURL + "/metrics")
		if err != nil {
			return err
		}
		fmt.Printf("  streamer: received %v, deleted %v, rejected %v, out of scope %v, undecodable receives %v, orphan re-checks confirmed %v / cleared %v\n",
			m["sessionwatch_streamer_messages_received_total"], m["sessionwatch_streamer_messages_deleted_total"],
			m["sessionwatch_streamer_rejected_total"], m["sessionwatch_streamer_out_of_scope_events_total"],
			m["sessionwatch_streamer_decode_errors_total"], m[`sessionwatch_streamer_orphan_rechecks_total{outcome="confirmed"}`],
			m[`sessionwatch_streamer_orphan_rechecks_total{outcome="cleared"}`])
	}
	dlq := &sqstest.Queue{Client: q, Name: "demo DLQ", URL: st.DLQURL}
	dead, err := dlq.ReceiveAll(ctx, 30*time.Second)
	if err != nil {
		return err
	}
	for _, m := range dead {
		fmt.Printf("  dead-letter queue: %q (after %d receives)\n", truncate(aws.ToString(m.Body), 60), maxReceiveCount)
	}
	if !ok || late != 0 || len(dead) != 1 {
		return errors.New("the findings differ from what the sample should give")
	}
	fmt.Println("  result: every expected finding, nothing else; the poison message is in the DLQ")
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func readFindings(path string) ([]sink.Finding, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []sink.Finding
	for line := range bytes.Lines(b) {
		var f sink.Finding
		if err := json.Unmarshal(line, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b sink.Finding) int { return strings.Compare(string(a.Category), string(b.Category)) })
	return out, nil
}

func httpGet(url string) (string, error) {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// scrape reads a Prometheus text page into "name{labels}" -> value.
func scrape(url string) (map[string]float64, error) {
	resp, err := httpGet(url)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(resp))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}
