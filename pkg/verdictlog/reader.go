package verdictlog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"
)

// ReadAPI is what the reader calls on S3.
type ReadAPI interface {
	s3.ListObjectsV2APIClient
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// DefaultMargin is how long after an event Read still looks for it by
// default: the streamer logs an event when it classifies it, which is
// seconds after the event as long as the queue has no backlog (CloudTrail
// delivers to EventBridge within about 5 minutes; an orphaned verdict
// waits its grace; a failing sink holds a message for minutes). An event
// logged later than that (a queue backlog of hours) is found with a larger
// ReaderOptions.Margin.
const DefaultMargin = time.Hour

// DefaultSkew is how long before an event Read starts looking for it: the
// writer names objects by its own clock, which may be behind CloudTrail's.
const DefaultSkew = 5 * time.Minute

// maxLine bounds one line; an entry is a few hundred bytes.
const maxLine = 64 << 10

// ReaderOptions configures Read.
type ReaderOptions struct {
	// S3 is required for an s3:// URI.
	S3 ReadAPI
	// Margin: objects written up to Margin after until are read; default
	// DefaultMargin. Skew: objects written from Skew before since;
	// default DefaultSkew.
	Margin, Skew time.Duration
	// Malformed is told of each line (or object) that cannot be read. Nil
	// makes the first one end Read with its *MalformedError; otherwise
	// reading goes on unless Malformed returns an error.
	Malformed func(*MalformedError) error
}

// MalformedError is a line, or an object, that cannot be read.
type MalformedError struct {
	Object string // S3 key or file path
	Line   int    // 1-based; 0 when the object itself is unreadable (not gzip)
	Err    error
}

func (e *MalformedError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("verdict log %s: %v", e.Object, e.Err)
	}
	return fmt.Sprintf("verdict log %s line %d: %v", e.Object, e.Line, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }

// Read calls fn, in object name order (hour, streamer, minute, part), for
// every entry whose event time is in [since, until], reading the objects
// written from since - Skew to until + Margin: an entry outside them (an
// event logged more than Margin after it happened) is not seen. An entry
// logged twice (a message redelivered) is given twice. An error of fn ends
// Read and is returned as is.
func Read(ctx context.Context, uri string, since, until time.Time, opts ReaderOptions, fn func(Entry) error) error {
	loc, err := parseURI(uri)
	if err != nil {
		return err
	}
	if loc.isS3() && opts.S3 == nil {
		return fmt.Errorf("verdict log %q: no S3 client", uri)
	}
	if until.Before(since) {
		return fmt.Errorf("verdict log: until %s before since %s", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	if opts.Margin <= 0 {
		opts.Margin = DefaultMargin
	}
	if opts.Skew <= 0 {
		opts.Skew = DefaultSkew
	}
	from := since.Add(-opts.Skew).UTC().Truncate(time.Minute)
	to := until.Add(opts.Margin).UTC()
	r := reader{loc: loc, opts: opts, since: since, until: until, fn: fn}
	for hour := from.Truncate(time.Hour); !hour.After(to); hour = hour.Add(time.Hour) {
		names, err := r.list(ctx, hour.Format(hourLayout))
		if err != nil {
			return err
		}
		for _, name := range names {
			_, minute, _, ok := parseName(path.Base(name))
			if !ok || minute.Before(from) || minute.After(to) {
				continue
			}
			if err := r.object(ctx, name); err != nil {
				return err
			}
		}
	}
	return nil
}

type reader struct {
	loc          location
	opts         ReaderOptions
	since, until time.Time
	fn           func(Entry) error
}

// list returns the object names (S3 keys or file paths) of one hour
// folder, sorted; a missing folder holds none.
func (r *reader) list(ctx context.Context, hour string) ([]string, error) {
	var names []string
	if !r.loc.isS3() {
		dir := filepath.Join(r.loc.dir, filepath.FromSlash(hour))
		des, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("verdict log: %w", err)
		}
		for _, de := range des {
			if de.Type().IsRegular() && strings.HasSuffix(de.Name(), suffix) {
				names = append(names, filepath.Join(dir, de.Name()))
			}
		}
		return names, nil // ReadDir sorts
	}
	p := s3.NewListObjectsV2Paginator(r.opts.S3, &s3.ListObjectsV2Input{
		Bucket: aws.String(r.loc.bucket),
		Prefix: aws.String(r.loc.key(hour) + "/"),
	}, func(o *s3.ListObjectsV2PaginatorOptions) { o.StopOnDuplicateToken = true })
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("verdict log: list s3://%s/%s/: %w", r.loc.bucket, r.loc.key(hour), err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); strings.HasSuffix(k, suffix) {
				names = append(names, k)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

func (r *reader) open(ctx context.Context, name string) (io.ReadCloser, error) {
	if !r.loc.isS3() {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("verdict log: %w", err)
		}
		return f, nil
	}
	out, err := r.opts.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.loc.bucket), Key: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("verdict log: get s3://%s/%s: %w", r.loc.bucket, name, err)
	}
	return out.Body, nil
}

// malformed hands m to the Malformed callback, or returns it.
func (r *reader) malformed(m *MalformedError) error {
	if r.opts.Malformed == nil {
		return m
	}
	return r.opts.Malformed(m)
}

func (r *reader) object(ctx context.Context, name string) error {
	body, err := r.open(ctx, name)
	if err != nil {
		return err
	}
	defer body.Close()
	// The object is read whole first: a failing connection is a failure
	// to read it, not a malformed object.
	raw, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("verdict log: read %s: %w", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return r.malformed(&MalformedError{Object: name, Err: err})
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		e, err := DecodeLine(sc.Bytes())
		if err != nil {
			if err := r.malformed(&MalformedError{Object: name, Line: n, Err: err}); err != nil {
				return err
			}
			continue
		}
		if e.EventTime.Before(r.since) || e.EventTime.After(r.until) {
			continue
		}
		if err := r.fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return r.malformed(&MalformedError{Object: name, Line: n + 1, Err: err})
	}
	return nil
}

// maxProbePages bounds HoldsObjects' listing of a large S3 prefix.
const maxProbePages = 20

// HoldsObjects reports whether uri holds any verdict log object at all, in
// any hour: a location that holds none is not the streamer's --verdict-log
// (a wrong bucket, prefix or folder), or a streamer that never logged an
// event. Read alone cannot tell that from a log that lacks the window's
// events, and would report every event as missed. A prefix too large to
// list in maxProbePages pages counts as holding objects.
func HoldsObjects(ctx context.Context, uri string, opts ReaderOptions) (bool, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return false, err
	}
	if !loc.isS3() {
		found := false
		err := filepath.WalkDir(loc.dir, func(p string, de os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if _, _, _, ok := parseName(de.Name()); ok && de.Type().IsRegular() {
				found = true
				return filepath.SkipAll
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("verdict log: %w", err)
		}
		return found, nil
	}
	if opts.S3 == nil {
		return false, fmt.Errorf("verdict log %q: no S3 client", uri)
	}
	p := s3.NewListObjectsV2Paginator(opts.S3, &s3.ListObjectsV2Input{
		Bucket: aws.String(loc.bucket),
		Prefix: aws.String(loc.key("")),
	}, func(o *s3.ListObjectsV2PaginatorOptions) { o.StopOnDuplicateToken = true })
	for range maxProbePages {
		if !p.HasMorePages() {
			return false, nil
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("verdict log: list s3://%s/%s: %w", loc.bucket, loc.key(""), err)
		}
		for _, o := range page.Contents {
			if _, _, _, ok := parseName(path.Base(aws.ToString(o.Key))); ok {
				return true, nil
			}
		}
	}
	return true, nil
}
