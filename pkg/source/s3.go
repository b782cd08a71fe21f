package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	ct "github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// S3API is what the archive source calls.
type S3API interface {
	s3.ListObjectsV2APIClient
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// DefaultDownloads is how many log objects are read at once.
const DefaultDownloads = 8

// listPageKeys is the keys asked for per listing call: a page of 1,000
// keys decodes to a few MB, one object read is far more work than the
// listing of 200 keys.
const listPageKeys = 200

// DeliverySlack widens the window when selecting log objects by the
// delivery time in their names: CloudTrail delivers an event's file some
// minutes after the event.
const DeliverySlack = time.Hour

// ParseS3URI reads s3://bucket[/prefix].
func ParseS3URI(uri string) (bucket, prefix string, err error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("%q: want s3://bucket[/prefix]", uri)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}

// S3Config configures an Archive source.
type S3Config struct {
	Client S3API
	Bucket string
	// Prefix is the trail's S3 key prefix (the part before AWSLogs/).
	Prefix string
	// Accounts and Regions select folders; empty means every one found.
	Accounts, Regions []string
	Since, Until      time.Time
	// Downloads bounds the objects read at once; default DefaultDownloads.
	Downloads  int
	Decoder    *ct.Decoder
	Checkpoint *Checkpoint
}

// Archive reads a trail's S3 archive: it lists, for the window, the log
// objects of each account and region (AWSLogs/<account>/CloudTrail/<region>/
// YYYY/MM/DD/, organization trails under AWSLogs/<org-id>/<account>/),
// keeps those whose delivery time is within DeliverySlack of the window,
// skips digests, and downloads, gunzips and stream-decodes them a few at a
// time. Each account and region is one listing, from the window's first
// day (StartAfter) to its last, read page by page as objects are read, so
// memory does not grow with the window. The checkpoint records the keys
// done.
type Archive struct {
	cfg   S3Config
	stats Stats
}

// NewArchive checks cfg and returns the source.
func NewArchive(cfg S3Config) (*Archive, error) {
	if cfg.Client == nil || cfg.Bucket == "" || cfg.Decoder == nil {
		return nil, errors.New("s3 source: client, bucket and decoder are required")
	}
	if cfg.Downloads < 1 {
		cfg.Downloads = DefaultDownloads
	}
	if cfg.Prefix != "" && !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	if !strings.HasSuffix(cfg.Prefix, "AWSLogs/") {
		cfg.Prefix += "AWSLogs/"
	}
	return &Archive{cfg: cfg}, nil
}

// Stats reports calls, objects read and progress.
func (a *Archive) Stats() *Stats { return &a.stats }

type objectKey struct {
	key string
	seq uint64
}

// Run lists and reads the archive.
func (a *Archive) Run(ctx context.Context, emit Emit) error {
	st := a.stats.NewStream("s3://" + a.cfg.Bucket + "/" + a.cfg.Prefix)
	through, done := a.cfg.Checkpoint.Keys()
	keys := newKeyTracker(a.cfg.Checkpoint, through, done)
	g, ctx := errgroup.WithContext(ctx)
	ch := make(chan objectKey, a.cfg.Downloads)
	var listed atomic.Int64
	g.Go(func() error {
		defer close(ch)
		return a.list(ctx, func(key string) error {
			if key <= through || done[key] {
				return nil
			}
			listed.Add(1)
			select {
			case ch <- objectKey{key: key, seq: keys.seq.start()}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	var finished atomic.Int64
	for range a.cfg.Downloads {
		g.Go(func() error {
			for k := range ch {
				ack := NewAck(func() {
					keys.finish(k)
					n := finished.Add(1)
					a.stats.Units.Add(1)
					st.Pages.Add(1)
					if l := listed.Load(); l > 0 {
						st.SetCovered(float64(n) / float64(l))
					}
				})
				n, err := a.read(ctx, k.key, ack, emit)
				st.Events.Add(int64(n))
				if err != nil {
					return err
				}
				ack.Close()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	st.Finish()
	return nil
}

// list calls fn with every log object key of the window, in key order.
func (a *Archive) list(ctx context.Context, fn func(key string) error) error {
	owners, err := a.folders(ctx, a.cfg.Prefix)
	if err != nil {
		return err
	}
	var accountPrefixes []string
	for _, owner := range owners {
		switch {
		case isAccountID(owner):
			accountPrefixes = append(accountPrefixes, a.cfg.Prefix+owner+"/")
		case strings.HasPrefix(owner, "o-"): // an organization trail
			members, err := a.folders(ctx, a.cfg.Prefix+owner+"/")
			if err != nil {
				return err
			}
			for _, m := range members {
				if isAccountID(m) {
					accountPrefixes = append(accountPrefixes, a.cfg.Prefix+owner+"/"+m+"/")
				}
			}
		}
	}
	from, to := a.cfg.Since.Add(-DeliverySlack).UTC(), a.cfg.Until.Add(DeliverySlack).UTC()
	for _, ap := range accountPrefixes {
		acct := strings.TrimSuffix(ap[strings.LastIndexByte(strings.TrimSuffix(ap, "/"), '/')+1:], "/")
		if len(a.cfg.Accounts) > 0 && !slices.Contains(a.cfg.Accounts, acct) {
			continue
		}
		regions, err := a.folders(ctx, ap+"CloudTrail/")
		if err != nil {
			return err
		}
		for _, region := range regions {
			if len(a.cfg.Regions) > 0 && !slices.Contains(a.cfg.Regions, region) {
				continue
			}
			// One listing per account and region, from the window's first
			// day to its last: StartAfter skips the days before it, and the
			// listing stops at the first key past the last day.
			prefix := ap + "CloudTrail/" + region + "/"
			first := prefix + from.Format("2006/01/02")
			last := prefix + to.Format("2006/01/02") + "/\xff"
			err := a.objects(ctx, prefix, first, last, func(key string) error {
				if ct.IsDigestKey(key) || !strings.HasSuffix(key, ".json.gz") && !strings.HasSuffix(key, ".json") {
					return nil
				}
				if t, ok := deliveryTime(key); ok && (t.Before(from) || t.After(to)) {
					return nil
				}
				return fn(key)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// folders lists the next path segment under prefix, sorted.
func (a *Archive) folders(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	pages := s3.NewListObjectsV2Paginator(a.cfg.Client, &s3.ListObjectsV2Input{
		Bucket: aws.String(a.cfg.Bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		a.stats.APICalls.Add(1)
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", a.cfg.Bucket, prefix, err)
		}
		for _, p := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), prefix), "/")
			if name != "" {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// objects calls fn with each key under prefix after startAfter and up to
// last, in key order.
func (a *Archive) objects(ctx context.Context, prefix, startAfter, last string, fn func(string) error) error {
	pages := s3.NewListObjectsV2Paginator(a.cfg.Client, &s3.ListObjectsV2Input{
		Bucket: aws.String(a.cfg.Bucket), Prefix: aws.String(prefix), StartAfter: aws.String(startAfter),
		MaxKeys: aws.Int32(listPageKeys),
	})
	for pages.HasMorePages() {
		a.stats.APICalls.Add(1)
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", a.cfg.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if key > last {
				return nil
			}
			if key <= startAfter {
				continue // a store that ignores StartAfter
			}
			if err := fn(key); err != nil {
				return err
			}
		}
	}
	return nil
}

// read downloads one object and emits its records; it returns how many it
// read. A broken object is counted as malformed and skipped; a failed
// download ends the run (a rerun resumes from the checkpoint).
func (a *Archive) read(ctx context.Context, key string, ack *Ack, emit Emit) (int, error) {
	a.stats.APICalls.Add(1)
	out, err := a.cfg.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(a.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("get s3://%s/%s: %w", a.cfg.Bucket, key, err)
	}
	defer out.Body.Close()
	body := &ct.ReadTracker{R: out.Body}
	n, err := readLogFile(ctx, body, key, a.cfg.Decoder, nil, ack, emit)
	if body.Err() != nil {
		return n, fmt.Errorf("read s3://%s/%s: %w", a.cfg.Bucket, key, body.Err())
	}
	return n, err
}

// readLogFile emits the records of a CloudTrail log file ({"Records":[…]},
// gzipped or not). Errors are the pipeline's; a broken file is emitted as
// one malformed record.
// Records of a region not among regions (when set) are out of scope.
func readLogFile(ctx context.Context, r io.Reader, origin string, d *ct.Decoder, regions []string, ack *Ack, emit Emit) (int, error) {
	send := func(rec Record) error {
		ack.Hold()
		rec.Origin, rec.Ack = origin, ack
		return emit(ctx, rec)
	}
	rd, release, err := ct.OpenLog(r)
	if err != nil {
		return 0, send(Record{Err: err})
	}
	defer release()
	n := 0
	for ev, err := range ct.Records(rd) {
		n++
		if err == nil {
			err = d.CheckRecord(ev)
		}
		if err := send(Record{Event: ev, Err: regionScope(ev, err, regions), Pos: n}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// deliveryTime reads the time in a log file's name:
// <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique>.json.gz.
func deliveryTime(key string) (time.Time, bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	parts := strings.Split(name, "_")
	if len(parts) < 5 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T1504Z", parts[3])
	return t, err == nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// keyTracker moves the checkpoint's keys forward as objects (or files)
// finish: through the last key of the finished prefix of the listing, plus
// the keys finished past it.
type keyTracker struct {
	cp      *Checkpoint
	seq     *sequence[string]
	mu      sync.Mutex
	through string
	earlier map[string]bool // done past through by the run resumed
}

// newKeyTracker copies done: the lister goes on reading the caller's map
// while finish, on another goroutine, prunes the copy.
func newKeyTracker(cp *Checkpoint, through string, done map[string]bool) *keyTracker {
	return &keyTracker{cp: cp, seq: newSequence[string](), through: through, earlier: maps.Clone(done)}
}

func (t *keyTracker) finish(k objectKey) {
	committed, pending := t.seq.finish(k.seq, k.key)
	if t.cp == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(committed) > 0 {
		t.through = committed[len(committed)-1]
	}
	for key := range t.earlier {
		if key <= t.through {
			delete(t.earlier, key)
		} else {
			pending = append(pending, key)
		}
	}
	t.cp.SetKeys(t.through, pending)
}
