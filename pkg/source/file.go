package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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
	cfg        FilesConfig
	files      []string
	unreadable []Unreadable // found while listing
	stats      Stats
}

// FilesConfig says what a file source reads.
type FilesConfig struct {
	Path       string // a file or a folder
	Decoder    *ct.Decoder
	Checkpoint *Checkpoint
	// Regions, when set, keeps the records whose awsRegion is one of them;
	// the others are out of scope. A file, unlike a LookupEvents stream or
	// an archive's region folder, can hold any region.
	Regions []string
}

// Unreadable is a file or folder that could not be read; the others are.
type Unreadable struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// NewFiles lists the log files under cfg.Path. A path that does not exist is
// ErrNoSource; a file or folder under it that cannot be listed is reported
// by Unreadable, not an error.
func NewFiles(cfg FilesConfig) (*Files, error) {
	files, unreadable, err := listLogFiles(cfg.Path)
	if err != nil {
		return nil, err
	}
	return &Files{cfg: cfg, files: files, unreadable: unreadable}, nil
}

// Found is the number of log files listed.
func (f *Files) Found() int { return len(f.files) }

// Stats reports the files done.
func (f *Files) Stats() *Stats { return &f.stats }

// Run reads every file.
// A file that cannot be opened is reported (Stats.Unreadable) and the next
// one is read; the checkpoint does not move past it, so a rerun tries it
// again.
func (f *Files) Run(ctx context.Context, emit Emit) error {
	st := f.stats.NewStream(f.cfg.Path)
	for _, u := range f.unreadable {
		f.stats.AddUnreadable(u)
	}
	through, done := f.cfg.Checkpoint.Keys()
	keys := newKeyTracker(f.cfg.Checkpoint, through, done)
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
		file, err := os.Open(path)
		if err != nil {
			// The PathError names the operation and the path.
			f.stats.AddUnreadable(Unreadable{Path: path, Error: err.Error()})
			continue
		}
		n, err := f.read(ctx, file, path, ack, emit)
		file.Close()
		st.Events.Add(int64(n))
		if err != nil {
			return err
		}
		ack.Close()
	}
	st.Finish()
	return nil
}

func (f *Files) read(ctx context.Context, file io.Reader, path string, ack *Ack, emit Emit) (int, error) {
	if logKind(path) != "lines" {
		return readLogFile(ctx, file, path, f.cfg.Decoder, f.cfg.Regions, ack, emit)
	}
	send := func(rec Record) error {
		ack.Hold()
		rec.Origin, rec.Ack = path, ack
		rec.Err = regionScope(rec.Event, rec.Err, f.cfg.Regions)
		return emit(ctx, rec)
	}
	rd, err := ct.Uncompressed(file)
	if err != nil {
		return 0, send(Record{Err: err})
	}
	n := 0
	for lm, err := range ct.Lines(rd, f.cfg.Decoder) {
		n++
		if err := send(Record{Event: lm.Event, Err: err, Pos: lm.Line}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// regionScope puts an event of a region not among regions out of scope.
func regionScope(ev *ct.Event, err error, regions []string) error {
	if err != nil || ev == nil || len(regions) == 0 || slices.Contains(regions, ev.Region) {
		return err
	}
	return &ct.ScopeError{EventSource: ev.Source, EventName: ev.Name, Reason: fmt.Sprintf("region %q is not among --regions", ev.Region)}
}

// listLogFiles returns the log files under path (or path itself), sorted,
// and the files and folders under it that could not be listed.
func listLogFiles(path string) ([]string, []Unreadable, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoSource, path)
		}
		return nil, nil, fmt.Errorf("source: %w", err) // a PathError names the path
	}
	if !st.IsDir() {
		return []string{path}, nil, nil
	}
	var (
		files      []string
		unreadable []Unreadable
	)
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == path {
				return err
			}
			unreadable = append(unreadable, Unreadable{Path: p, Error: err.Error()})
			return nil // WalkDir skips the folder it could not read
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
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	sort.Strings(files)
	return files, unreadable, nil
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
