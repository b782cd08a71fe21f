package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ct "github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// ErrNoSource is returned when a file source's path does not exist.
var ErrNoSource = errors.New("source not found")

// Files reads local CloudTrail log files: one file, or a folder laid out
// like a trail archive. .json and .json.gz files hold {"Records":[…]},
// .jsonl and .jsonl.gz (or .ndjson) one message a line in any intake shape;
// digests are skipped. Files are read one at a time, in path order; the
// checkpoint records the files done.
type Files struct {
	path    string
	files   []string
	decoder *ct.Decoder
	cp      *Checkpoint
	stats   Stats
}

// NewFiles lists the log files under path.
func NewFiles(path string, decoder *ct.Decoder, cp *Checkpoint) (*Files, error) {
	files, err := listLogFiles(path)
	if err != nil {
		return nil, err
	}
	return &Files{path: path, files: files, decoder: decoder, cp: cp}, nil
}

// Stats reports the files done.
func (f *Files) Stats() *Stats { return &f.stats }

// Run reads every file.
func (f *Files) Run(ctx context.Context, emit Emit) error {
	st := f.stats.NewStream(f.path)
	through, done := f.cp.Keys()
	keys := newKeyTracker(f.cp, through, done)
	for i, path := range f.files {
		if path <= through || done[path] {
			continue
		}
		k := objectKey{key: path, seq: keys.seq.start()}
		ack := NewAck(func() {
			keys.finish(k)
			f.stats.Units.Add(1)
			st.Pages.Add(1)
			st.SetCovered(float64(i+1) / float64(len(f.files)))
		})
		n, err := f.read(ctx, path, ack, emit)
		st.Events.Add(int64(n))
		if err != nil {
			return err
		}
		ack.Close()
	}
	st.Finish()
	return nil
}

func (f *Files) read(ctx context.Context, path string, ack *Ack, emit Emit) (int, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer file.Close()
	if logKind(path) != "lines" {
		return readLogFile(ctx, file, path, f.decoder, ack, emit)
	}
	send := func(rec Record) error {
		ack.Hold()
		rec.Origin, rec.Ack = path, ack
		return emit(ctx, rec)
	}
	rd, err := ct.Uncompressed(file)
	if err != nil {
		return 0, send(Record{Err: err})
	}
	n := 0
	for lm, err := range ct.Lines(rd, f.decoder) {
		n++
		if err := send(Record{Event: lm.Event, Err: err, Pos: lm.Line}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// listLogFiles returns the log files under path (or path itself), sorted.
func listLogFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoSource, path)
		}
		return nil, fmt.Errorf("source %s: %w", path, err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "CloudTrail-Digest" {
				return filepath.SkipDir
			}
			return nil
		}
		if logKind(p) != "" && !ct.IsDigestKey(filepath.ToSlash(p)) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", path, err)
	}
	sort.Strings(files)
	return files, nil
}

// logKind is "records" for CloudTrail log files, "lines" for JSON lines.
func logKind(path string) string {
	name := strings.TrimSuffix(strings.ToLower(path), ".gz")
	switch {
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
		return "lines"
	case strings.HasSuffix(name, ".json"):
		return "records"
	default:
		return ""
	}
}
