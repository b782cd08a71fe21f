package benchmarks

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/testkit/memory"
	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
)

const benchUsers = 64

var benchNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func sourceIdentity(i int) string { return fmt.Sprintf("sentinel:user%d:direct:%08x", i%benchUsers, i) }

// fixture returns benchUsers EventBridge envelopes, each of a tracked
// session, and a classifier whose cache already holds every answer.
func fixture(b *testing.B) ([][]byte, *classify.Classifier, *memory.Sessions) {
	b.Helper()
	var table []sessions.Session
	bodies := make([][]byte, benchUsers)
	evTime := benchNow.Add(-10 * time.Minute)
	for i := range benchUsers {
		si := sourceIdentity(i)
		s := sessions.Session{ID: fmt.Sprintf("s%d", i), User: fmt.Sprintf("user%d", i), Status: sessions.StatusActive, SourceIdentity: si,
			StartedAt: evTime.Add(-time.Hour), ExpiresAt: evTime.Add(time.Hour)}
		table = append(table, s)
		bodies[i] = envelope(i, si, evTime)
	}
	store := memory.NewSessions(table)
	cache, err := sessions.NewCache(store, sessions.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	dir, err := sessions.NewDirectory(store, sessions.DirectoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	// Long TTLs: the benchmark measures the hot path, not expiry.
	m, err := sessions.NewMatcher(cache, dir, sessions.MatcherConfig{PositiveTTL: time.Hour, NegativeTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	c, err := classify.New(m, classify.Config{Now: func() time.Time { return benchNow }})
	if err != nil {
		b.Fatal(err)
	}
	return bodies, c, store
}

// envelope renders a realistic EventBridge envelope (about 2.3 KB, the size
// of a real role-chained AssumeRole record).
func envelope(i int, si string, t time.Time) []byte {
	return fmt.Appendf(nil, `{"version":"0","id":"6f1c-%[1]d","detail-type":"AWS API Call via CloudTrail","source":"aws.sts","account":"111122223333","time":"%[3]s","region":"eu-west-1","resources":[],"detail":{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLEID:user%[4]d","arn":"arn:aws:sts::111122223333:assumed-role/SentinelGateway/user%[4]d","accountId":"111122223333","accessKeyId":"ASIAEXAMPLE%06[1]d","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLEID","arn":"arn:aws:iam::111122223333:role/SentinelGateway","accountId":"111122223333","userName":"SentinelGateway"},"attributes":{"creationDate":"%[3]s","mfaAuthenticated":"false"},"sourceIdentity":"%[2]s"}},"eventTime":"%[3]s","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.0","requestParameters":{"roleArn":"arn:aws:iam::111122223333:role/Admin","roleSessionName":"user%[4]d","durationSeconds":3600,"sourceIdentity":"%[2]s","tags":[{"key":"team","value":"platform"}]},"responseElements":{"credentials":{"accessKeyId":"ASIAISSUED%06[1]d","sessionToken":"REDACTED","expiration":"Nov 27, 2026, 12:50:00 PM"},"assumedRoleUser":{"assumedRoleId":"AROAEXAMPLEADMIN:user%[4]d","arn":"arn:aws:sts::111122223333:assumed-role/Admin/user%[4]d"},"sourceIdentity":"%[2]s"},"requestID":"c0ffee00-0000-4000-8000-%012[1]d","eventID":"e0000000-0000-4000-8000-%012[1]d","readOnly":true,"resources":[{"accountId":"111122223333","type":"AWS::IAM::Role","ARN":"arn:aws:iam::111122223333:role/Admin"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"sts.eu-west-1.amazonaws.com"}}}`,
		i, si, t.Format(time.RFC3339), i%benchUsers)
}

// BenchmarkDecodeClassify decodes an EventBridge envelope once and
// classifies it against a warm cache: the streamer's per-message work.
func BenchmarkDecodeClassify(b *testing.B) {
	bodies, c, store := fixture(b)
	d := cloudtrail.NewDecoder(cloudtrail.Config{})
	ctx := context.Background()
	classifyAll := func() {
		for _, body := range bodies {
			msg, err := d.DecodeMessage(body)
			if err != nil {
				b.Fatal(err)
			}
			r, err := c.Classify(ctx, msg.Event)
			if err != nil || r.Verdict != classify.Tracked {
				b.Fatalf("verdict %s, %v", r.Verdict, err)
			}
		}
	}
	classifyAll() // warm the cache
	reads := store.Reads()
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body := bodies[i%len(bodies)]
		msg, err := d.DecodeMessage(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Classify(ctx, msg.Event); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if store.Reads() != reads {
		b.Fatalf("cache not warm: %d store reads during the benchmark", store.Reads()-reads)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSeedDecodeClassify is the baseline: the seed unmarshalled the
// whole record into a generic map once per field it extracted, then
// classified. Same inputs, same warm cache.
func BenchmarkSeedDecodeClassify(b *testing.B) {
	bodies, c, _ := fixture(b)
	ctx := context.Background()
	b.SetBytes(int64(len(bodies[0])))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev, err := seedDecode(bodies[i%len(bodies)])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Classify(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// seedDecode mimics the seed's extraction: each field parsed from scratch.
func seedDecode(body []byte) (*cloudtrail.Event, error) {
	field := func(path ...string) (string, error) {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return "", err
		}
		var cur any = m["detail"]
		for _, p := range path {
			obj, ok := cur.(map[string]any)
			if !ok {
				return "", nil
			}
			cur = obj[p]
		}
		s, _ := cur.(string)
		return s, nil
	}
	ev := &cloudtrail.Event{Source: "sts.amazonaws.com"}
	var err error
	extract := []struct {
		dst  *string
		path []string
	}{
		{&ev.Name, []string{"eventName"}},
		{&ev.ID, []string{"eventID"}},
		{&ev.RequestID, []string{"requestID"}},
		{&ev.SourceIdentity, []string{"userIdentity", "sessionContext", "sourceIdentity"}},
		{&ev.TargetRoleARN, []string{"requestParameters", "roleArn"}},
		{&ev.Caller.ARN, []string{"userIdentity", "arn"}},
	}
	for _, x := range extract {
		if *x.dst, err = field(x.path...); err != nil {
			return nil, err
		}
	}
	t, err := field("eventTime")
	if err != nil {
		return nil, err
	}
	if ev.Time, err = time.Parse(time.RFC3339, t); err != nil {
		return nil, err
	}
	return ev, nil
}

// BenchmarkCacheHit is one Matcher lookup answered from the cache.
func BenchmarkCacheHit(b *testing.B) {
	_, _, store := fixture(b)
	cache, err := sessions.NewCache(store, sessions.CacheConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	si := sourceIdentity(1)
	if _, err := cache.BySourceIdentity(ctx, si, time.Hour); err != nil {
		b.Fatal(err)
	}
	reads := store.Reads()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cache.BySourceIdentity(ctx, si, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	if store.Reads() != reads {
		b.Fatal("cache missed")
	}
}
