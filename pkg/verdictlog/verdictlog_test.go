package verdictlog

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/klauspost/compress/gzip"
)

var t0 = time.Date(2026, 12, 6, 20, 59, 30, 0, time.UTC)

// clock is a settable writer clock.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func entry(id string, at time.Time, finding string) Entry {
	v := "tracked"
	if finding != "" {
		v = "no_source_identity"
	}
	return Entry{EventID: id, EventTime: at, Account: "111122223333", Region: "eu-west-1",
		EventName: "AssumeRole", Verdict: v, FindingID: finding}
}

// s3Client is the real SDK client against an in-process gofakes3 holding
// bucket "log".
func s3Client(t *testing.T) *s3.Client {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("log"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")})
}

// backends opens the same test on file: and on s3 (gofakes3).
func backends(t *testing.T) map[string]func(t *testing.T) (string, WriterOptions, ReaderOptions) {
	return map[string]func(t *testing.T) (string, WriterOptions, ReaderOptions){
		"file": func(t *testing.T) (string, WriterOptions, ReaderOptions) {
			return "file:" + t.TempDir(), WriterOptions{}, ReaderOptions{}
		},
		"s3": func(t *testing.T) (string, WriterOptions, ReaderOptions) {
			c := s3Client(t)
			return "s3://log/verdicts/prod", WriterOptions{S3: c}, ReaderOptions{S3: c}
		},
	}
}

func readAll(t *testing.T, uri string, since, until time.Time, ro ReaderOptions) []Entry {
	t.Helper()
	var got []Entry
	if err := Read(context.Background(), uri, since, until, ro, func(e Entry) error {
		got = append(got, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestWriteRead(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			uri, wo, ro := open(t)
			clk := &clock{now: t0}
			wo.StreamerID, wo.Now = "task-0a1b", clk.Now
			w, err := OpenWriter(ctx, uri, wo)
			if err != nil {
				t.Fatal(err)
			}
			want := []Entry{entry("e1", t0.Add(-time.Minute), ""), entry("e2", t0.Add(-50*time.Second), "8f0c7e2a-0000-8000-8000-000000000000")}
			if err := w.Add(ctx, want...); err != nil {
				t.Fatal(err)
			}
			if n, _ := w.Buffered(); n != 2 {
				t.Fatalf("buffered %d, want 2", n)
			}
			o1, err := w.Flush(ctx)
			if err != nil || o1.Entries != 2 || o1.Bytes == 0 {
				t.Fatalf("flush: %+v %v", o1, err)
			}
			// Same minute again: part 1. Next minute (and hour): part 0.
			e3 := entry("e3", t0.Add(-10*time.Second), "")
			if err := w.Add(ctx, e3); err != nil {
				t.Fatal(err)
			}
			o2, err := w.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			clk.now = t0.Add(time.Minute)
			e4 := entry("e4", t0.Add(20*time.Second), "")
			if err := w.Add(ctx, e4); err != nil {
				t.Fatal(err)
			}
			o3, err := w.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if o, err := w.Flush(ctx); err != nil || o != (Object{}) {
				t.Fatalf("empty flush wrote %+v, %v", o, err)
			}
			for i, c := range []struct {
				o    Object
				want string
			}{
				{o1, "2026/12/06/20/task-0a1b-20261206T2059Z-0000.jsonl.gz"},
				{o2, "2026/12/06/20/task-0a1b-20261206T2059Z-0001.jsonl.gz"},
				{o3, "2026/12/06/21/task-0a1b-20261206T2100Z-0000.jsonl.gz"},
			} {
				if !strings.HasSuffix(filepath.ToSlash(c.o.Key), c.want) {
					t.Errorf("object %d: key %q, want …%s", i, c.o.Key, c.want)
				}
			}
			got := readAll(t, uri, t0.Add(-time.Hour), t0.Add(time.Hour), ro)
			if all := append(want, e3, e4); !equalEntries(got, all) {
				t.Errorf("read %+v\nwant %+v", got, all)
			}
			// The event window selects by event time.
			got = readAll(t, uri, t0.Add(-55*time.Second), t0, ro)
			if ids := eventIDs(got); !slices.Equal(ids, []string{"e2", "e3"}) {
				t.Errorf("window read %v, want [e2 e3]", ids)
			}
			// An object written past until + margin is not read.
			got = readAll(t, uri, t0.Add(-2*time.Minute), t0.Add(-time.Minute), ReaderOptions{S3: ro.S3, Margin: 30 * time.Second})
			if ids := eventIDs(got); !slices.Equal(ids, []string{"e1"}) {
				t.Errorf("margin read %v, want [e1]", ids)
			}
		})
	}
}

// TestNoOverwrite: a second writer with the same id (a restart) in the same
// minute takes the next part instead of replacing the first one's object.
func TestNoOverwrite(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			uri, wo, ro := open(t)
			clk := &clock{now: t0}
			wo.StreamerID, wo.Now = "host-1", clk.Now
			for _, id := range []string{"a", "b"} {
				w, err := OpenWriter(ctx, uri, wo)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Add(ctx, entry(id, t0, "")); err != nil {
					t.Fatal(err)
				}
				o, err := w.Flush(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if wantPart := map[string]string{"a": "-0000", "b": "-0001"}[id]; !strings.HasSuffix(o.Key, wantPart+suffix) {
					t.Errorf("writer %s wrote %s, want part %s", id, o.Key, wantPart)
				}
			}
			if ids := eventIDs(readAll(t, uri, t0, t0, ro)); !slices.Equal(ids, []string{"a", "b"}) {
				t.Errorf("read %v, want [a b]", ids)
			}
		})
	}
}

func TestMalformedReported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	uri := "file:" + dir
	w, err := OpenWriter(ctx, uri, WriterOptions{StreamerID: "s", Now: (&clock{now: t0}).Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, entry("good", t0, "")); err != nil {
		t.Fatal(err)
	}
	o, err := w.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A hand-made object: one good line, one bad, another schema; and a
	// file that is not gzip.
	var raw []byte
	raw, _ = AppendLine(raw, entry("good2", t0, ""))
	raw = append(raw, "{\"schema\":\"sessionwatch.verdicts/v1\",\"event_id\":\"x\"\n"...)
	raw = append(raw, "{\"schema\":\"sessionwatch.verdicts/v2\",\"event_id\":\"y\",\"event_time\":\"2026-12-06T20:59:30Z\",\"verdict\":\"tracked\"}\n"...)
	hour := filepath.Dir(o.Key)
	writeGzip(t, filepath.Join(hour, "s-20261206T2059Z-0007.jsonl.gz"), raw)
	if err := os.WriteFile(filepath.Join(hour, "s-20261206T2059Z-0008.jsonl.gz"), []byte("plain"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Without a callback the first malformed line ends Read.
	err = Read(ctx, uri, t0, t0, ReaderOptions{}, func(Entry) error { return nil })
	var me *MalformedError
	if !errors.As(err, &me) || me.Line != 2 || !strings.HasSuffix(me.Object, "-0007.jsonl.gz") {
		t.Fatalf("Read = %v, want line 2 of part 7 malformed", err)
	}
	var bad []string
	var got []Entry
	err = Read(ctx, uri, t0, t0, ReaderOptions{Malformed: func(m *MalformedError) error {
		bad = append(bad, filepath.Base(m.Object)+":"+string(rune('0'+m.Line)))
		return nil
	}}, func(e Entry) error { got = append(got, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"s-20261206T2059Z-0007.jsonl.gz:2", "s-20261206T2059Z-0007.jsonl.gz:3", "s-20261206T2059Z-0008.jsonl.gz:0"}; !slices.Equal(bad, want) {
		t.Errorf("malformed %v, want %v", bad, want)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"good", "good2"}) {
		t.Errorf("read %v, want [good good2]", ids)
	}
}

func writeGzip(t *testing.T, name string, raw []byte) {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, z.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsChecked(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, uri string
		opts      WriterOptions
	}{
		{"no id", "file:" + t.TempDir(), WriterOptions{}},
		{"slash in id", "file:" + t.TempDir(), WriterOptions{StreamerID: "a/b"}},
		{"s3 without client", "s3://b/p", WriterOptions{StreamerID: "a"}},
		{"bad scheme", "http://b/p", WriterOptions{StreamerID: "a"}},
		{"empty dir", "file:", WriterOptions{StreamerID: "a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := OpenWriter(ctx, c.uri, c.opts); err == nil {
				t.Error("accepted")
			}
		})
	}
	w, err := OpenWriter(ctx, "file:"+t.TempDir(), WriterOptions{StreamerID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, entry("ok", t0, ""), Entry{EventID: "no-verdict", EventTime: t0}); err == nil {
		t.Error("an entry without verdict was accepted")
	}
	if n, _ := w.Buffered(); n != 0 {
		t.Errorf("a refused Add buffered %d entries", n)
	}
}

func TestParseName(t *testing.T) {
	for _, c := range []struct {
		base, id string
		part     int
		ok       bool
	}{
		{"ecs-3f2a-b-20261206T2059Z-0003.jsonl.gz", "ecs-3f2a-b", 3, true},
		{"h-20261206T2059Z-12345.jsonl.gz", "h", 12345, true},
		{"-20261206T2059Z-0000.jsonl.gz", "", 0, false},
		{"h-20261206T2059-0000.jsonl.gz", "", 0, false},
		{"h-20261306T2059Z-0000.jsonl.gz", "", 0, false},
		{"h-20261206T2059Z-x.jsonl.gz", "", 0, false},
		{"h-20261206T2059Z-0000.jsonl", "", 0, false},
	} {
		id, minute, part, ok := parseName(c.base)
		if ok != c.ok || (ok && (id != c.id || part != c.part || !minute.Equal(time.Date(2026, 12, 6, 20, 59, 0, 0, time.UTC)))) {
			t.Errorf("parseName(%q) = %q %v %d %v", c.base, id, minute, part, ok)
		}
	}
}

func eventIDs(es []Entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.EventID
	}
	return ids
}

func equalEntries(a, b []Entry) bool {
	return slices.EqualFunc(a, b, func(x, y Entry) bool {
		return x.EventTime.Equal(y.EventTime) && x.EventID == y.EventID && x.Account == y.Account &&
			x.Region == y.Region && x.EventName == y.EventName && x.Verdict == y.Verdict && x.FindingID == y.FindingID
	})
}

// TestHoldsObjects: a location is a verdict log once any object the writer
// names is in it, in any hour; another prefix of the same bucket, or a
// folder of other files, holds none.
func TestHoldsObjects(t *testing.T) {
	ctx := context.Background()
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			uri, wo, ro := open(t)
			if holds, err := HoldsObjects(ctx, uri, ro); err != nil || holds {
				t.Fatalf("empty log: holds %v, %v; want false", holds, err)
			}
			wo.StreamerID, wo.Now = "task-0a1b", func() time.Time { return t0.Add(-400 * 24 * time.Hour) }
			w, err := OpenWriter(ctx, uri, wo)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(ctx, entry("e1", t0, "")); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if holds, err := HoldsObjects(ctx, uri, ro); err != nil || !holds {
				t.Errorf("log with one object: holds %v, %v; want true", holds, err)
			}
			other := uri + "-elsewhere"
			if name == "file" {
				other = "file:" + t.TempDir()
				if err := os.WriteFile(filepath.Join(strings.TrimPrefix(other, "file:"), "notes.jsonl.gz"), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if holds, err := HoldsObjects(ctx, other, ro); err != nil || holds {
				t.Errorf("%s: holds %v, %v; want false", other, holds, err)
			}
		})
	}
	if _, err := HoldsObjects(ctx, "s3://log/x", ReaderOptions{}); err == nil {
		t.Error("s3 without a client: no error")
	}
}
