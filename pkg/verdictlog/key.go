package verdictlog

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Object names: PREFIX/YYYY/MM/DD/HH/<streamer-id>-<YYYYMMDDTHHMM>Z-<part>.jsonl.gz,
// by the UTC time the object was written.
const (
	suffix       = ".jsonl.gz"
	minuteLayout = "20060102T1504"
	hourLayout   = "2006/01/02/15"
)

// streamerIDPattern is what a streamer id may hold: it becomes part of an
// object name, and a host name or an ECS task id fits.
var streamerIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ValidStreamerID reports whether id can name a streamer's objects.
func ValidStreamerID(id string) error {
	if !streamerIDPattern.MatchString(id) {
		return fmt.Errorf("streamer id %q: want 1 to 128 of A-Z a-z 0-9 . _ -", id)
	}
	return nil
}

// objectName is the name of part part of streamer's objects for minute
// (UTC), under the hour folder.
func objectName(streamer string, minute time.Time, part int) string {
	m := minute.UTC()
	return path.Join(m.Format(hourLayout), fmt.Sprintf("%s-%sZ-%04d%s", streamer, m.Format(minuteLayout), part, suffix))
}

// parseName reads the streamer id, minute and part from an object's base
// name; ok is false for a name the writer does not make.
func parseName(base string) (streamer string, minute time.Time, part int, ok bool) {
	rest, found := strings.CutSuffix(base, suffix)
	if !found {
		return "", time.Time{}, 0, false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return "", time.Time{}, 0, false
	}
	part, err := strconv.Atoi(rest[i+1:])
	if err != nil || part < 0 {
		return "", time.Time{}, 0, false
	}
	rest = rest[:i]
	// "-" + YYYYMMDDTHHMM + "Z"
	const stamp = 1 + len(minuteLayout) + 1
	if len(rest) <= stamp || rest[len(rest)-stamp] != '-' || rest[len(rest)-1] != 'Z' {
		return "", time.Time{}, 0, false
	}
	minute, err = time.Parse(minuteLayout, rest[len(rest)-stamp+1:len(rest)-1])
	if err != nil {
		return "", time.Time{}, 0, false
	}
	return rest[:len(rest)-stamp], minute, part, true
}

// location is a parsed log URI: s3://BUCKET/PREFIX or file:DIR.
type location struct {
	bucket, prefix string // s3
	dir            string // file
}

func (l location) isS3() bool { return l.bucket != "" }

// key is the S3 key (or the path under dir) of name.
func (l location) key(name string) string {
	if l.isS3() && l.prefix != "" {
		return l.prefix + "/" + name
	}
	return name
}

// ParseURI checks a verdict log URI: s3://BUCKET[/PREFIX] or file:DIR.
func ParseURI(uri string) error {
	_, err := parseURI(uri)
	return err
}

func parseURI(uri string) (location, error) {
	if dir, ok := strings.CutPrefix(uri, "file:"); ok {
		if dir == "" {
			return location{}, fmt.Errorf("verdict log %q: file: needs a directory", uri)
		}
		return location{dir: dir}, nil
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return location{}, fmt.Errorf("verdict log %q: want s3://BUCKET[/PREFIX] or file:DIR", uri)
	}
	return location{bucket: u.Host, prefix: strings.Trim(u.Path, "/")}, nil
}
