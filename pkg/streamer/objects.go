package streamer

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// errBadObject: a log object that is not a CloudTrail log file (corrupt
// gzip, truncated or invalid JSON). Retrying cannot fix it, so the message
// is left for the redrive policy, which keeps it for investigation.
var errBadObject = errors.New("unreadable log object")

// recordCounts are what reading log objects skipped, counted only once every
// object of a message was read (a retry reads them again).
type recordCounts struct{ malformed, rejected, outOfScope int }

// fetchAll reads every log object of an S3 notification and keeps its
// in-scope records. A fetch or read failure is retried later; a corrupt
// object returns errBadObject.
func (s *engine) fetchAll(ctx context.Context, d *delivery, objs []cloudtrail.ObjectRef) ([]item, error) {
	if s.objects == nil {
		// Counted once, by decode, as undecodable: no fetch was tried.
		s.log.Error().Str("message_id", d.id).Msg("S3 notification, but no S3 client configured; message left for the queue's redrive policy")
		// No retry can supply a client: leave it for the DLQ, as the
		// Deps field says.
		return nil, fmt.Errorf("%w: no S3 client configured", errBadObject)
	}
	var (
		items []item
		c     recordCounts
	)
	for _, o := range objs {
		err := s.fetchObject(ctx, o, &items, &c)
		switch {
		case errors.Is(err, errBadObject):
			s.log.Warn().Str("message_id", d.id).Str("bucket", o.Bucket).Str("key", o.Key).Err(err).
				Msg("log object unreadable; message left for the queue's redrive policy")
			return nil, err
		case err != nil:
			s.m.s3Errors.Inc()
			s.log.Warn().Str("message_id", d.id).Str("bucket", o.Bucket).Str("key", o.Key).Err(err).
				Msg("log object fetch failed; will retry")
			return nil, err
		}
		s.m.s3Objects.Inc()
	}
	s.m.decodeErrors.Add(float64(c.malformed))
	s.m.rejected.Add(float64(c.rejected))
	s.m.outOfScope.Add(float64(c.outOfScope))
	return items, nil
}

func (s *engine) fetchObject(ctx context.Context, o cloudtrail.ObjectRef, items *[]item, c *recordCounts) error {
	out, err := s.objects.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(o.Key)})
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", o.Bucket, o.Key, err)
	}
	defer out.Body.Close()
	// A failed read surfaces from the JSON decoder as a syntax error; the
	// wrapper tells a broken download (retry) from a broken file.
	body := &cloudtrail.ReadTracker{R: out.Body}
	r, release, err := cloudtrail.OpenLog(body)
	if err != nil {
		if body.Err() != nil {
			return fmt.Errorf("read s3://%s/%s: %w", o.Bucket, o.Key, body.Err())
		}
		return fmt.Errorf("%w: %w", errBadObject, err)
	}
	defer release()
	for ev, err := range cloudtrail.Records(r) {
		if body.Err() != nil {
			return fmt.Errorf("read s3://%s/%s: %w", o.Bucket, o.Key, body.Err())
		}
		if err != nil {
			if fatalRecordsError(err) {
				return fmt.Errorf("%w: %w", errBadObject, err)
			}
			c.malformed++
			continue
		}
		switch err := s.dec.CheckRecord(ev); {
		case err == nil:
			*items = append(*items, item{ev: ev})
		case errors.Is(err, cloudtrail.ErrRejected):
			c.rejected++
		default:
			c.outOfScope++
		}
	}
	if body.Err() != nil {
		return fmt.Errorf("read s3://%s/%s: %w", o.Bucket, o.Key, body.Err())
	}
	return nil
}

// fatalRecordsError tells an error that ended cloudtrail.Records (the file
// is unusable from there on) from one about a single record.
func fatalRecordsError(err error) bool {
	var fileErr *cloudtrail.FileError
	return errors.As(err, &fileErr)
}
