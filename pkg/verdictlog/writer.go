package verdictlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/klauspost/compress/gzip"
)

// PutAPI is what the writer calls on S3.
type PutAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// WriterOptions configures a Writer.
type WriterOptions struct {
	// StreamerID names this writer's objects (ValidStreamerID). Two
	// writers that run at once need distinct ids; a writer never
	// overwrites an object, whoever wrote it (it takes the next part).
	StreamerID string
	// S3 is required for an s3:// URI.
	S3 PutAPI
	// Now is the clock that names objects; default time.Now.
	Now func() time.Time
}

// Object is what one Flush wrote.
type Object struct {
	Key     string // the S3 key, or the path of the file
	Entries int
	Bytes   int64 // gzip bytes
}

// maxParts bounds the names one Flush tries when parts of its minute
// already exist.
const maxParts = 10000

// Writer buffers entries and writes them as one object per Flush. It is
// safe for concurrent use.
type Writer struct {
	loc  location
	id   string
	s3   PutAPI
	now  func() time.Time
	mu   sync.Mutex
	buf  []byte
	n    int
	last time.Time // the minute of the last object written
	part int       // the next part of minute last
}

// OpenWriter checks uri (s3://BUCKET[/PREFIX] or file:DIR) and opts. A
// file: directory is created if missing.
func OpenWriter(ctx context.Context, uri string, opts WriterOptions) (*Writer, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	if err := ValidStreamerID(opts.StreamerID); err != nil {
		return nil, err
	}
	if loc.isS3() && opts.S3 == nil {
		return nil, fmt.Errorf("verdict log %q: no S3 client", uri)
	}
	if !loc.isS3() {
		if err := os.MkdirAll(loc.dir, 0o750); err != nil {
			return nil, fmt.Errorf("verdict log: %w", err)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Writer{loc: loc, id: opts.StreamerID, s3: opts.S3, now: opts.Now}, nil
}

// Add buffers entries. It refuses an entry without event_id, verdict or
// event time (and adds none of the call's entries then).
func (w *Writer) Add(_ context.Context, entries ...Entry) error {
	var b []byte
	for _, e := range entries {
		var err error
		if b, err = AppendLine(b, e); err != nil {
			return err
		}
	}
	w.mu.Lock()
	w.buf = append(w.buf, b...)
	w.n += len(entries)
	w.mu.Unlock()
	return nil
}

// Buffered is what the next Flush would write: entries and JSON bytes
// before compression.
func (w *Writer) Buffered() (entries, size int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, len(w.buf)
}

// Flush writes every buffered entry as one object, named by the current
// minute and the next free part, and returns once it is durable (S3 has
// answered the PutObject; a file is synced and renamed into place, its
// directory synced). With nothing buffered it writes nothing. On error
// the buffered entries are discarded: the caller, which still holds what
// they belong to, must not treat them as logged and adds them again when
// it retries.
func (w *Writer) Flush(ctx context.Context) (Object, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		return Object{}, nil
	}
	raw, n := w.buf, w.n
	w.buf, w.n = nil, 0
	var z bytes.Buffer
	zw, err := gzip.NewWriterLevel(&z, gzip.DefaultCompression)
	if err == nil {
		if _, err = zw.Write(raw); err == nil {
			err = zw.Close()
		}
	}
	if err != nil {
		return Object{}, fmt.Errorf("verdict log: gzip: %w", err)
	}
	minute := w.now().UTC().Truncate(time.Minute)
	if !minute.Equal(w.last) {
		w.last, w.part = minute, 0
	}
	for range maxParts {
		name := w.loc.key(objectName(w.id, minute, w.part))
		w.part++
		var err error
		if w.loc.isS3() {
			err = w.put(ctx, name, z.Bytes())
		} else {
			name = filepath.Join(w.loc.dir, filepath.FromSlash(name))
			err = writeFile(name, z.Bytes())
		}
		if errors.Is(err, errExists) {
			continue
		}
		if err != nil {
			return Object{}, err
		}
		return Object{Key: name, Entries: n, Bytes: int64(z.Len())}, nil
	}
	return Object{}, fmt.Errorf("verdict log: %d parts of minute %s exist already", maxParts, minute.Format(time.RFC3339))
}

// errExists: the object name is taken.
var errExists = errors.New("object exists")

func (w *Writer) put(ctx context.Context, key string, body []byte) error {
	_, err := w.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(w.loc.bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/gzip"),
		// Never overwrite: another writer with the same id, or this
		// one before a restart, may have written this part.
		IfNoneMatch: aws.String("*"),
	})
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return fmt.Errorf("s3://%s/%s: %w", w.loc.bucket, key, errExists)
	}
	if err != nil {
		return fmt.Errorf("verdict log: put s3://%s/%s: %w", w.loc.bucket, key, err)
	}
	return nil
}

// writeFile writes body to a temporary file beside name, syncs it, links
// it to name (which fails when name exists, unlike a rename) and syncs the
// directories it may have created.
func writeFile(name string, body []byte) error {
	dir := filepath.Dir(name)
	created, err := mkdirAll(dir)
	if err != nil {
		return fmt.Errorf("verdict log: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("verdict log: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("verdict log: write %s: %w", tmp, err)
	}
	if err := os.Link(tmp, name); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", name, errExists)
		}
		return fmt.Errorf("verdict log: %w", err)
	}
	for _, d := range append([]string{dir}, created...) {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("verdict log: %w", err)
		}
	}
	return nil
}

// mkdirAll creates dir and its missing parents and returns the parents of
// those it created, whose entries must be synced.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	parents := make([]string, 0, len(missing))
	for _, d := range missing {
		parents = append(parents, filepath.Dir(d))
	}
	return parents, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
