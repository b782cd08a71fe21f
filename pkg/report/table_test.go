package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sessionwatch/sessionwatch/internal/golden"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// tableFindings are out of time order, with a long ARN, a long reason and
// a SourceIdentity that tries to drive the terminal; each detected a
// minute after its event but the last (unknown: "-").
func tableFindings() []sink.Finding {
	mk := func(id string, at time.Duration, v classify.Verdict, caller, role, si, reason string) sink.Finding {
		detected := t0.Add(at + time.Minute)
		if v == classify.DeniedAttempt {
			detected = time.Time{}
		}
		return sink.Finding{Schema: sink.Schema, FindingID: id, Category: v, Severity: v.DefaultSeverity().String(), Reason: reason, DetectedAt: detected,
			Event:     sink.EventInfo{ID: "ev-" + id, Name: "AssumeRole", Time: t0.Add(at), Region: "eu-west-1", Account: "111122223333"},
			Principal: sink.PrincipalInfo{ARN: caller}, Target: sink.TargetInfo{RoleARN: role}, SourceIdentity: sink.SourceIdentityInfo{Value: si}}
	}
	return []sink.Finding{
		mk("f3", 3*time.Hour, classify.Revoked, "arn:aws:sts::111122223333:assumed-role/SentinelGateway/alice",
			"arn:aws:iam::111122223333:role/SentinelAdmin", "sentinel:alice:direct:0a1b2c3d",
			`session s-1 of "alice" was revoked at 2026-11-20T12:30:00Z by security-oncall (laptop reported stolen), before the event at 2026-11-20T13:00:00Z`),
		mk("f1", 0, classify.NoSourceIdentity, "arn:aws:iam::111122223333:user/bob", "arn:aws:iam::111122223333:role/DeployPipeline", "",
			"no SourceIdentity in responseElements, requestParameters or userIdentity.sessionContext"),
		mk("f2", time.Hour, classify.NonSentinel,
			"arn:aws:sts::111122223333:assumed-role/a-role-with-a-rather-long-name/christopher.montgomery-wellington",
			"arn:aws:iam::111122223333:role/platform/engineering/a-very-long-role-path/ProductionAdministrator",
			"evil\x1b[2J\x1b]0;pwned\x07\u202esi", `SourceIdentity "evil\x1b[2J" is not in the expected format`),
		mk("f4", 4*time.Hour, classify.DeniedAttempt, "", "", "", "denied with AccessDenied"),
	}
}

func tableSummary() Summary {
	return Summary{
		Window:  [2]time.Time{t0.Add(-24 * time.Hour), t0.Add(24 * time.Hour)},
		Sources: []string{"file:./trail"}, Filters: []string{"role=arn:aws:iam::*:role/*"},
		Filtered: map[string]int{FilterRole: 7}, Events: 120, InScope: 100, Classified: 93, Tracked: 89, Findings: 4,
		PerVerdict:  map[classify.Verdict]int{classify.Tracked: 89, classify.NoSourceIdentity: 1, classify.NonSentinel: 1, classify.Revoked: 1, classify.DeniedAttempt: 1},
		PerSeverity: map[string]int{"critical": 1, "high": 2, "medium": 1},
	}
}

// golden compares got with testdata/name (go test -update rewrites it).
func checkGolden(t *testing.T, name string, got []byte) { golden.Check(t, name, got, *update) }

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestWriteTableGolden(t *testing.T) {
	var plain bytes.Buffer
	if err := WriteTable(&plain, tableFindings(), tableSummary(), TableOptions{}); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "table.golden", plain.Bytes())

	// No colour: no escape sequence at all, even with one in the data.
	if bytes.ContainsRune(plain.Bytes(), 0x1b) || bytes.ContainsRune(plain.Bytes(), '\u202e') || bytes.ContainsRune(plain.Bytes(), 0x07) {
		t.Error("ESC, BEL or a bidi override reached the output")
	}
	// Sorted by time.
	var order []string
	for _, line := range strings.Split(plain.String(), "\n") {
		if strings.HasPrefix(line, "2026-") {
			order = append(order, line[:20])
		}
	}
	if strings.Join(order, " ") != "2026-11-20T10:00:00Z 2026-11-20T11:00:00Z 2026-11-20T13:00:00Z 2026-11-20T14:00:00Z" {
		t.Errorf("rows not in time order: %v", order)
	}

	// Colour adds SGR sequences and nothing else: stripped, it is the
	// plain table, column for column.
	var color bytes.Buffer
	if err := WriteTable(&color, tableFindings(), tableSummary(), TableOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(color.Bytes(), []byte("\x1b[1;31mrevoked")) {
		t.Error("no colour on a critical verdict")
	}
	if got := ansi.ReplaceAll(color.Bytes(), nil); !bytes.Equal(got, plain.Bytes()) {
		t.Errorf("coloured table, stripped, differs from the plain one:\n%s", got)
	}
}

func TestWriteTableFindingsOnlyAndCap(t *testing.T) {
	s := Summary{Sources: []string{"findings:out.jsonl"}, FindingsOnly: true, Findings: 10, Duplicates: 2,
		PerVerdict: map[classify.Verdict]int{classify.Revoked: 10}, PerSeverity: map[string]int{"critical": 10}}
	var buf bytes.Buffer
	if err := WriteTable(&buf, tableFindings()[:1], s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"tracked rate    n/a: a findings file holds no tracked events",
		"classified      n/a",
		"shown           1 of 10 (the most severe, then the most recent)",
		"duplicates      2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "events read") || strings.Contains(out, "%") {
		t.Errorf("a findings-only table shows numbers it cannot know:\n%s", out)
	}

	buf.Reset()
	if err := WriteTable(&buf, nil, Summary{}, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "no findings\n") || !strings.Contains(buf.String(), "tracked rate    n/a (nothing classified)") {
		t.Errorf("empty table:\n%s", buf.String())
	}
}

// TestWriteTableWidth: with a Width the other columns leave room for at
// least 20 runes of reason (tableFindings fill every column to its cap, 225
// runes with the least reason), the reason is cut to fit.
func TestWriteTableWidth(t *testing.T) {
	const width = 240
	var buf bytes.Buffer
	if err := WriteTable(&buf, tableFindings(), tableSummary(), TableOptions{Width: width}); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "2026-") || strings.HasPrefix(line, "TIME") {
			if n := utf8.RuneCountInString(line); n > width {
				t.Errorf("line of %d > %d runes: %s", n, width, line)
			}
			if strings.HasSuffix(line, "…") {
				cut++
			}
		}
	}
	if cut == 0 {
		t.Errorf("no reason cut to fit %d runes:\n%s", width, buf.String())
	}
}

func TestColorEnabled(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ColorEnabled(f, env()) {
		t.Error("colour on a regular file")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if ColorEnabled(w, env()) {
		t.Error("colour on a pipe")
	}
	if ColorEnabled(nil, env()) {
		t.Error("colour on nil")
	}
	// A terminal, when the test has one: NO_COLOR and TERM=dumb still win.
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if !ColorEnabled(tty, env("TERM", "xterm")) {
			t.Error("no colour on a terminal")
		}
		if ColorEnabled(tty, env("NO_COLOR", "1")) || ColorEnabled(tty, env("TERM", "dumb")) {
			t.Error("colour despite NO_COLOR or TERM=dumb")
		}
		if !ColorEnabled(tty, env("NO_COLOR", "")) {
			t.Error("an empty NO_COLOR must not disable colour (no-color.org)")
		}
	}
}

func TestTextHelpers(t *testing.T) {
	const arn = "arn:aws:iam::111122223333:role/SentinelAdmin"
	for _, tt := range []struct{ got, want string }{
		{truncateMiddle(arn, 23), "arn:aws:iam…ntinelAdmin"},
		{truncateEnd(arn, 20), "arn:aws:iam::111122…"},
		{truncateMiddle("short", 20), "short"},
		{truncateEnd("ääääää", 4), "äää…"},
		{truncateMiddle("äbcdefgh", 5), "äb…gh"},
		{truncateARN("arn:aws:sts::111122223333:assumed-role/SentinelGateway/christopher", 48), "arn:aws:sts::111122223333:assumed-ro…christopher"},
		{truncateARN(arn, 100), arn},
		{truncateARN("not-an-arn-but-long-enough", 11), "not-a…nough"},
		{truncateARN("arn:aws:iam::111122223333:role/x", 20), "arn:aws:i…333:role/x"},
		{printable("a\x1b[31mb\u202ec\u2066d\x00e\xffz"), "a?[31mb?c?d?e?z"},
		{printable("sentinel:alice:direct:0a1b2c3d"), "sentinel:alice:direct:0a1b2c3d"},
		{thousands(0), "0"}, {thousands(999), "999"}, {thousands(1000), "1,000"},
		{thousands(1234567), "1,234,567"}, {thousands(-1234), "-1,234"},
		{percent(0.6382, true), "63.8%"}, {percent(0, false), "n/a"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
