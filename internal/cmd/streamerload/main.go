// Command streamerload pushes a generated corpus through local SQS into the
// streamer binary, run with its default flags, and reports messages per
// second, the streamer's own CPU time per message (read from
// /proc/PID/stat, so the emulators' CPU is not counted) and its peak RSS
// (VmHWM). make load runs it; --write puts the medians into
// docs/BENCHMARKS.md. It refuses to run without the emulator endpoints.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"

	"github.com/sessionwatch/sessionwatch/internal/corpus"
	"github.com/sessionwatch/sessionwatch/internal/sqstest"
	"github.com/sessionwatch/sessionwatch/internal/testenv"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/streamer"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat on
// Linux.
const clockTicks = 100

type options struct {
	events    int
	runs      int
	bin       string
	out       string
	write     string
	command   string
	mix       string
	users     int
	profile   string
	breakdown bool
	args      []string
}

func main() {
	var o options
	flag.IntVar(&o.events, "events", 50_000, "events (messages) per run")
	flag.IntVar(&o.runs, "runs", 3, "runs; the report gives their medians")
	flag.StringVar(&o.bin, "bin", "", "the streamer binary (required)")
	flag.StringVar(&o.out, "out", "out/load", "directory for findings and logs")
	flag.StringVar(&o.write, "write", "", "Markdown file whose streamer load section is replaced with the results")
	flag.StringVar(&o.command, "command", "make load", "the command to quote in the report")
	queryTable := flag.String("query-cpu", "", "(internal) time Query calls on this table in a fresh process and print µs of CPU per call")
	floorQueue := flag.String("sqs-floor", "", "(internal) receive and delete every message of this queue with the SDK alone, as the streamer's pollers would, and print µs of CPU per message")
	flag.BoolVar(&o.breakdown, "breakdown", false, "also run once with the no-store mix and time the SDK's Query calls, to split the CPU per message")
	flag.StringVar(&o.mix, "mix", "default", "verdict mix: default (corpus.DefaultMix: 60% tracked) or no-store (only verdicts that need no session read: the streamer's own cost)")
	flag.IntVar(&o.users, "users", 0, "generated users with sessions (corpus.Config.Users: 2000 gives tens of sessions each); 0 keeps the built-in skewed population (13 users, thousands of sessions each)")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a 10 s CPU profile of the streamer (from its /debug/pprof, taken 3 s into each run) to this path; runs after the first add -N")
	flag.Parse()
	o.args = flag.Args() // extra streamer flags, appended after the defaults
	var err error
	switch ctx := context.Background(); {
	case *queryTable != "":
		err = printQueryCPU(ctx, *queryTable)
	case *floorQueue != "":
		err = printSQSFloor(ctx, *floorQueue)
	default:
		err = run(ctx, o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "streamerload: %v\n", err)
		os.Exit(1)
	}
}

type result struct {
	messages    int
	wall        time.Duration
	cpu         time.Duration
	peakRSS     int64 // bytes
	emulatorCPU time.Duration
	findings    int
	exitCode    int
	sendRate    float64
	queries     float64 // session table reads
}

func (r result) rate() float64          { return float64(r.messages) / r.wall.Seconds() }
func (r result) cpuPerMessage() float64 { return float64(r.cpu.Microseconds()) / float64(r.messages) }

func run(ctx context.Context, o options) error {
	for _, v := range []string{sqstest.EndpointEnv, testenv.EndpointEnv} {
		if os.Getenv(v) == "" {
			return fmt.Errorf("%s is not set: run through scripts/with-emulators.sh", v)
		}
	}
	if o.bin == "" {
		return errors.New("--bin is required")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	sq, dyn := sqs.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg)

	start := time.Now()
	c, err := generate(o.mix, o.events, o.users)
	if err != nil {
		return err
	}
	bodies := render(c)
	table := "sessionwatch-load-" + sqstest.RandomSuffix()
	if err := testenv.CreateSessionTable(ctx, dyn, table); err != nil {
		return err
	}
	if err := testenv.PutSessions(ctx, dyn, table, c.Sessions); err != nil {
		return err
	}
	fmt.Printf("corpus: %d events (%d findings expected, %d B average envelope), %d sessions in %s; ready in %v\n",
		len(c.Events), len(c.Findings()), averageSize(bodies), len(c.Sessions), table, time.Since(start).Round(time.Second))

	one := func(label string, c *corpus.Corpus, bodies [][]byte, n int) (result, error) {
		r, err := runOnce(ctx, o, sq, table, bodies, n)
		if err != nil {
			return r, fmt.Errorf("%s: %w", label, err)
		}
		if r.findings != len(c.Findings()) {
			return r, fmt.Errorf("%s: %d distinct findings, want %d", label, r.findings, len(c.Findings()))
		}
		if r.exitCode != 0 {
			return r, fmt.Errorf("%s: the streamer exited %d after SIGTERM", label, r.exitCode)
		}
		fmt.Printf("%s: %d messages in %v: %.0f msg/s, streamer CPU %.1f µs/msg, peak RSS %.1f MB, %.2f table reads/msg (emulators used %v CPU; sent at %.0f msg/s)\n",
			label, r.messages, r.wall.Round(10*time.Millisecond), r.rate(), r.cpuPerMessage(), mb(r.peakRSS), r.queries/float64(r.messages), r.emulatorCPU.Round(10*time.Millisecond), r.sendRate)
		return r, nil
	}
	var results []result
	for i := range o.runs {
		r, err := one(fmt.Sprintf("run %d", i+1), c, bodies, i+1)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	var bd *breakdown
	if o.breakdown {
		bd = &breakdown{}
		nc, err := generate("no-store", o.events, o.users)
		if err != nil {
			return err
		}
		if bd.noStore, err = one("no-store run", nc, render(nc), o.runs+1); err != nil {
			return err
		}
		// In a fresh process: this one holds the corpus, whose heap the
		// garbage collector would charge to every call.
		out, err := exec.Command(os.Args[0], "--query-cpu", table).Output()
		if err != nil {
			return fmt.Errorf("time Query calls: %w", err)
		}
		if bd.queryCPU, err = strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil {
			return err
		}
		fmt.Printf("one session-table Query through aws-sdk-go-v2 costs %.0f µs of CPU (sequential, in this process)\n", bd.queryCPU)
		if bd.sqsFloor, err = sqsFloor(ctx, sq, bodies); err != nil {
			return err
		}
		fmt.Printf("receiving and deleting alone through aws-sdk-go-v2 costs %.1f µs of CPU per message\n", bd.sqsFloor)
	}
	report := markdown(o, c, results, bd)
	fmt.Println()
	fmt.Println(report)
	if o.write != "" {
		if err := replaceSection(o.write, report); err != nil {
			return err
		}
		fmt.Printf("wrote the results into %s\n", o.write)
	}
	return nil
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// generate builds the corpus of a mix: default (corpus.DefaultMix) or
// no-store (only verdicts that need no session read), over users generated
// users (0: the built-in ones).
func generate(mix string, events, users int) (*corpus.Corpus, error) {
	var weights map[classify.Verdict]int
	switch mix {
	case "default":
	case "no-store":
		weights = map[classify.Verdict]int{classify.NoSourceIdentity: 1, classify.NonSentinel: 1}
	default:
		return nil, fmt.Errorf("mix %q: want default or no-store", mix)
	}
	return corpus.Generate(corpus.Config{Seed: 7, Events: events, Now: time.Now(), MinAge: time.Hour, Mix: weights, Users: users,
		Accounts: []string{"111122223333", "444455556666"}, Regions: []string{"us-east-1", "eu-west-1"}})
}

// render gives each event as EventBridge delivers it to the queue.
func render(c *corpus.Corpus) [][]byte {
	bodies := make([][]byte, len(c.Events))
	for i, ev := range c.Events {
		bodies[i] = corpus.EventBridgeEnvelope(ev)
	}
	return bodies
}

func averageSize(bodies [][]byte) int {
	n := 0
	for _, b := range bodies {
		n += len(b)
	}
	return n / max(len(bodies), 1)
}

type breakdown struct {
	noStore  result
	queryCPU float64 // µs per Query
	sqsFloor float64 // µs per message for receive and delete alone
}

// printSQSFloor receives every message of queueURL and deletes it, with the
// streamer's default number of pollers, 10 messages a receive and one
// DeleteMessageBatch a receive, nothing else; it prints the process's CPU
// per message. It is the least any consumer built on aws-sdk-go-v2 spends.
func printSQSFloor(ctx context.Context, queueURL string) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	sq := sqs.NewFromConfig(cfg)
	var n atomic.Int64
	cpu0 := selfCPU()
	g, ctx := errgroup.WithContext(ctx)
	for range streamer.DefaultPollers {
		g.Go(func() error {
			for empty := 0; empty < 2; {
				out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
					QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 120,
				})
				if err != nil {
					return err
				}
				if len(out.Messages) == 0 {
					empty++
					continue
				}
				entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				if _, err := sq.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries}); err != nil {
					return err
				}
				n.Add(int64(len(out.Messages)))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n.Load() == 0 {
		return errors.New("the queue was empty")
	}
	fmt.Printf("%.1f %d\n", float64((selfCPU()-cpu0).Microseconds())/float64(n.Load()), n.Load())
	return nil
}

// sqsFloor fills a fresh queue with bodies and runs printSQSFloor on it in
// a fresh process.
func sqsFloor(ctx context.Context, sq *sqs.Client, bodies [][]byte) (float64, error) {
	q, err := sqstest.CreateQueue(ctx, sq, "sessionwatch-load-floor-"+sqstest.RandomSuffix(), sqstest.Options{MaxReceiveCount: 1000})
	if err != nil {
		return 0, err
	}
	defer q.Delete(context.Background())
	if err := q.Send(ctx, bodies); err != nil {
		return 0, err
	}
	out, err := exec.Command(os.Args[0], "--sqs-floor", q.URL).Output()
	if err != nil {
		return 0, fmt.Errorf("SQS floor: %w", err)
	}
	var us float64
	var n int
	if _, err := fmt.Sscanf(string(out), "%f %d", &us, &n); err != nil {
		return 0, fmt.Errorf("SQS floor output %q: %w", out, err)
	}
	if n != len(bodies) {
		return 0, fmt.Errorf("SQS floor: %d messages received, want %d", n, len(bodies))
	}
	return us, nil
}

func printQueryCPU(ctx context.Context, table string) error {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	us, err := queryCPU(ctx, dynamodb.NewFromConfig(cfg), table, 2000)
	if err != nil {
		return err
	}
	fmt.Printf("%.1f\n", us)
	return nil
}

// queryCPU times n sequential session-table Queries (a source identity no
// session has, as most exact-match lookups are) in this process: user plus
// system CPU per call.
func queryCPU(ctx context.Context, dyn *dynamodb.Client, table string, n int) (float64, error) {
	query := func(i int) error {
		_, err := dyn.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(table), IndexName: aws.String(sessions.DefaultSourceIdentityIndex),
			KeyConditionExpression:    aws.String("#k = :v"),
			ExpressionAttributeNames:  map[string]string{"#k": sessions.AttrSourceIdentity},
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":v": &dtypes.AttributeValueMemberS{Value: fmt.Sprintf("sentinel:load:direct:%08x", i)}},
		})
		return err
	}
	for i := range 100 { // warm up connections
		if err := query(i); err != nil {
			return 0, err
		}
	}
	before := selfCPU()
	for i := range n {
		if err := query(i); err != nil {
			return 0, err
		}
	}
	return float64((selfCPU() - before).Microseconds()) / float64(n), nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runOnce(ctx context.Context, o options, sq *sqs.Client, table string, bodies [][]byte, n int) (result, error) {
	var r result
	q, err := sqstest.CreateQueue(ctx, sq, fmt.Sprintf("sessionwatch-load-%d-%s", n, sqstest.RandomSuffix()), sqstest.Options{MaxReceiveCount: 1000})
	if err != nil {
		return r, err
	}
	defer q.Delete(context.Background())
	sendStart := time.Now()
	if err := q.Send(ctx, bodies); err != nil {
		return r, err
	}
	r.sendRate = float64(len(bodies)) / time.Since(sendStart).Seconds()
	r.messages = len(bodies)

	addr, err := freeAddr()
	if err != nil {
		return r, err
	}
	findings := filepath.Join(o.out, fmt.Sprintf("findings-%d.jsonl", n))
	logPath := filepath.Join(o.out, fmt.Sprintf("streamer-%d.log", n))
	_ = os.Remove(findings)
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	// The defaults, except where findings go and the ops port.
	args := append([]string{"--queue-url", q.URL, "--table", table, "--sink", "file:" + findings, "--metrics-addr", addr}, o.args...)
	if o.profile != "" {
		args = append(args, "--pprof")
	}
	cmd := exec.Command(o.bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, logFile
	emu0 := emulatorCPU()
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	if o.profile != "" {
		path := o.profile
		if n > 1 {
			path = fmt.Sprintf("%s-%d", o.profile, n)
		}
		go fetchProfile(ctx, "http://"+addr+"/debug/pprof/profile?seconds=10", path)
	}
	// Progress comes from the queue (the emulator), not from /metrics:
	// scraping the streamer would add to the CPU being measured.
	deadline := began.Add(10 * time.Minute)
	for {
		v, f, err := q.Depth(ctx)
		if err == nil && v+f == 0 {
			break
		}
		select {
		case <-exited:
			return r, fmt.Errorf("the streamer exited early (%v); log: %s", waitErr, logPath)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("not done after 10 minutes (%d+%d left); log: %s", v, f, logPath)
		}
	}
	r.wall = time.Since(began)
	// Every message left the queue; its delete was counted once the call
	// returned (one scrape, for the record).
	metrics := "http://" + addr + "/metrics"
	deleted, err := scrapeValue(metrics, "sessionwatch_streamer_messages_deleted_total")
	if err != nil {
		return r, err
	}
	if deleted < float64(len(bodies)) {
		return r, fmt.Errorf("queue empty but only %v of %d deletes counted", deleted, len(bodies))
	}
	if r.queries, err = scrapeValue(metrics, "sessionwatch_store_queries_total"); err != nil {
		return r, err
	}
	if r.cpu, err = processCPU(pid); err != nil {
		return r, err
	}
	if r.peakRSS, err = peakRSS(pid); err != nil {
		return r, err
	}
	r.emulatorCPU = emulatorCPU() - emu0
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return r, err
	}
	select {
	case <-exited:
		var exitErr *exec.ExitError
		if errors.As(waitErr, &exitErr) {
			r.exitCode = exitErr.ExitCode()
		} else if waitErr != nil {
			return r, waitErr
		}
	case <-time.After(time.Minute):
		return r, errors.New("the streamer did not exit within a minute of SIGTERM")
	}
	if r.findings, err = distinctEvents(findings); err != nil {
		return r, err
	}
	return r, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func scrapeValue(url, name string) (float64, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(rest, 64)
		}
	}
	return 0, fmt.Errorf("%s not found", name)
}

// processCPU is utime+stime of a process (all its threads).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields start after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// peakRSS is VmHWM, the process's resident set high-water mark.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM")
}

// emulatorCPU sums the CPU time of the emulators scripts/emulators.sh
// started (for the record; it is not the streamer's).
func emulatorCPU() time.Duration {
	var total time.Duration
	for _, name := range []string{"dynalite", "sqs"} {
		b, err := os.ReadFile(filepath.Join(".emulators", name+".pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		if d, err := processCPU(pid); err == nil {
			total += d
		}
	}
	return total
}

// distinctEvents counts the events that have a finding in a file sink.
func distinctEvents(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for line := range bytes.Lines(b) {
		// "event":{"id":"…" without a full decode.
		i := bytes.Index(line, []byte(`"event":{"id":"`))
		if i < 0 {
			return 0, fmt.Errorf("%s: a line without an event id", path)
		}
		rest := line[i+len(`"event":{"id":"`):]
		seen[string(rest[:bytes.IndexByte(rest, '"')])] = true
	}
	return len(seen), nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

const (
	beginMarker = "<!-- streamer-load:begin (written by internal/cmd/streamerload) -->"
	endMarker   = "<!-- streamer-load:end -->"
)

func markdown(o options, c *corpus.Corpus, rs []result, bd *breakdown) string {
	var rate, cpu, rss, wall []float64
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## Streamer under load\n\n", beginMarker)
	fmt.Fprintf(&b, "Date: %s. Machine: %d cores (%s), %s, %s/%s; load average at the end: %s (the machine is shared).\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, loadAvg())
	fmt.Fprintf(&b, "Command:\n\n```sh\n%s\n```\n\n", o.command)
	fmt.Fprintf(&b, "Each run fills a fresh local-aws-sqs queue with %d EventBridge envelopes (the generated corpus: %d findings expected, "+
		"%d sessions in a dynalite table), then starts `bin/streamer` with its default flags (only `--queue-url`, `--table`, "+
		"`--sink file:…` and `--metrics-addr` given%s) and waits until the queue is empty (polling the emulator, not the streamer), then checks that `/metrics` counted every delete. "+
		"Messages/s is messages over the time from process start to the last delete; CPU is the streamer process's "+
		"utime+stime from `/proc/PID/stat` over the same span (startup included; the emulators' CPU is not counted, "+
		"but they run on the same two cores and use about as much); "+
		"peak RSS is `VmHWM` from `/proc/PID/status`. Each run checks that every expected finding arrived and that SIGTERM "+
		"gives exit status 0.\n\n", o.events, len(c.Findings()), len(c.Sessions), extraArgs(o.args))
	b.WriteString("| run | messages | wall | messages/s | streamer CPU/message | peak RSS | emulators' CPU |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for i, r := range rs {
		fmt.Fprintf(&b, "| %d | %d | %.1f s | %.0f | %.1f µs | %.1f MB | %.1f s |\n", i+1, r.messages, r.wall.Seconds(), r.rate(), r.cpuPerMessage(), mb(r.peakRSS), r.emulatorCPU.Seconds())
		rate = append(rate, r.rate())
		cpu = append(cpu, r.cpuPerMessage())
		rss = append(rss, mb(r.peakRSS))
		wall = append(wall, r.wall.Seconds())
	}
	fmt.Fprintf(&b, "| **median** | | %.1f s | **%.0f** | **%.1f µs** | **%.1f MB** | |\n\n", median(wall), median(rate), median(cpu), median(rss))
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	fmt.Fprintf(&b, "Goals (issue 3): at most 50 µs of streamer CPU per message: %s (%.1f µs); at most 150 MB RSS with the defaults: %s (%.1f MB).\n",
		verdict(median(cpu) <= 50), median(cpu), verdict(median(rss) <= 150), median(rss))
	if bd != nil {
		reads := 0.0
		for _, r := range rs {
			reads += r.queries / float64(r.messages)
		}
		reads /= float64(len(rs))
		ns := bd.noStore
		fmt.Fprintf(&b, "\nWhere the CPU goes (same command, `--breakdown`):\n\n")
		fmt.Fprintf(&b, "- **The floor**: receiving and deleting the same %d messages with aws-sdk-go-v2 alone, nothing else (a separate "+
			"process: %d pollers, 10 messages a ReceiveMessage, one DeleteMessageBatch each; process CPU from getrusage) costs "+
			"**%.1f µs** of CPU per message on this machine, %.1fx the goal of 50 µs. No consumer built on the SDK gets below it here; "+
			"the streamer's figure is %.1fx the floor.\n", o.events, streamer.DefaultPollers, bd.sqsFloor, bd.sqsFloor/50, median(cpu)/bd.sqsFloor)
		fmt.Fprintf(&b, "- The default mix makes %.2f session-table reads per message (`sessionwatch_store_queries_total`): orphaned "+
			"events (an exact query, then a fresh re-check of both indexes), unverifiable ones, and events matched by user and time "+
			"(whose SourceIdentity no session carries, so the source-identity index is asked once), and exact matches on revoked or "+
			"expired sessions (a newer valid session with the same SourceIdentity may postdate the cached list). An exact match on a valid "+
			"session is answered from the user's cached session list.\n", reads)
		fmt.Fprintf(&b, "- One such `Query` through aws-sdk-go-v2 against dynalite costs **%.0f µs** of CPU (2,000 sequential calls in a "+
			"separate process, user+system CPU from getrusage): the SDK's middleware stack, signing, JSON and the HTTP round trip. "+
			"That alone is about %.0f µs per message.\n", bd.queryCPU, bd.queryCPU*reads)
		fmt.Fprintf(&b, "- A run with a mix that needs no session read (every event no_source_identity or non_sentinel_format, so every "+
			"message also writes a finding and logs it): %d messages, %.0f msg/s, **%.1f µs** of streamer CPU per message, peak RSS %.1f MB. "+
			"That is the pipeline itself: receive and delete (one SQS call per 10 messages each), decode, classify, sink write, log line, "+
			"scheduling and GC.\n", ns.messages, ns.rate(), ns.cpuPerMessage(), mb(ns.peakRSS))
	}
	b.WriteString(endMarker + "\n")
	return b.String()
}

func extraArgs(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return "; plus `" + strings.Join(args, " ") + "`"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// replaceSection puts report in place of the previous streamer load section
// of path, or appends it, leaving every other section as it was.
func replaceSection(path, report string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(b)
	if doc == "" {
		doc = "# Benchmarks\n"
	}
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	if i >= 0 && j > i {
		doc = doc[:i] + report + doc[j+len(endMarker)+1:]
	} else {
		doc = strings.TrimRight(doc, "\n") + "\n\n" + report
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// fetchProfile saves a CPU profile of the streamer, taken 3 s after it
// started (once its caches are warm), to path; failures are printed.
func fetchProfile(ctx context.Context, url, path string) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
	}
}
