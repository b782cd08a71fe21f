package streamer

import (
	"cmp"
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Silence defaults and limits.
const (
	// DefaultSilenceAfter is how long an expected account and region may
	// send nothing before they count as silent.
	DefaultSilenceAfter = 6 * time.Hour
	// maxSilencePairs bounds the account and region pairs followed (label
	// values come from messages, which anyone with sqs:SendMessage can
	// write); beyond it new pairs are counted, not followed.
	maxSilencePairs = 2000
	// silenceCheckEvery is how often silence is evaluated while running.
	silenceCheckEvery = time.Minute
)

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
)

type pair struct{ account, region string }

// silence follows, per account and region, the time of the last event seen,
// and counts the expected pairs that sent nothing for longer than after.
//
// Expected pairs: every pair seen so far; and, when ExpectRegions is set,
// each of those regions in each account (ExpectAccounts, else every account
// seen). A pair expected but never seen is silent once after has passed
// since the streamer started.
type silence struct {
	after    time.Duration
	now      func() time.Time
	regions  []string
	accounts []string // fixed (ExpectAccounts); nil: the accounts seen
	m        *Metrics
	log      zerolog.Logger
	// queue is the QueueName dimension of the embedded metric.
	queue string

	mu       sync.Mutex
	start    time.Time
	last     map[pair]time.Time
	accSeen  map[string]struct{}
	silent   map[pair]bool
	overflow bool
}

func newSilence(cfg Config, now func() time.Time, m *Metrics, log zerolog.Logger) *silence {
	return &silence{
		after: cfg.SilenceAfter, now: now, regions: slices.Clone(cfg.ExpectRegions), accounts: slices.Clone(cfg.ExpectAccounts),
		m: m, log: log, queue: path.Base(cfg.QueueURL), start: now(), last: map[pair]time.Time{}, accSeen: map[string]struct{}{}, silent: map[pair]bool{},
	}
}

// observe records an event of account and region at t (capped at now: a
// record dated in the future must not hide a silence).
func (s *silence) observe(account, region string, t time.Time) {
	if !accountPattern.MatchString(account) || !regionPattern.MatchString(region) {
		return
	}
	now := s.now()
	if t.After(now) {
		t = now
	}
	p := pair{account, region}
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, known := s.last[p]
	if !known && len(s.last) >= maxSilencePairs {
		if !s.overflow {
			s.overflow = true
			s.log.Warn().Int("pairs", maxSilencePairs).Msg("silence: too many account and region pairs; new ones are not followed")
		}
		s.m.silencePairsDropped.Inc()
		return
	}
	if known && !t.After(prev) {
		return
	}
	s.last[p] = t
	s.accSeen[account] = struct{}{}
	s.m.lastEvent.WithLabelValues(account, region).Set(float64(t.UnixNano()) / 1e9)
}

// check counts the silent expected pairs, sets the gauge, logs each pair
// that turned silent or spoke again, and returns the silent ones.
func (s *silence) check() []pair {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	expected := make(map[pair]time.Time, len(s.last))
	for p, t := range s.last {
		expected[p] = t
	}
	accounts := s.accounts
	if accounts == nil {
		for a := range s.accSeen {
			accounts = append(accounts, a)
		}
	}
	for _, a := range accounts {
		for _, r := range s.regions {
			p := pair{a, r}
			if _, ok := expected[p]; !ok {
				expected[p] = time.Time{} // never seen: silent since start
			}
		}
	}
	var out []pair
	for p, t := range expected {
		since := t
		if t.IsZero() {
			since = s.start
		}
		isSilent := now.Sub(since) > s.after
		if isSilent {
			out = append(out, p)
		}
		switch {
		case isSilent && !s.silent[p]:
			ev := s.log.Warn().Str("account", p.account).Str("region", p.region).Dur("silence_after", s.after)
			if t.IsZero() {
				ev = ev.Str("last_event", "never")
			} else {
				ev = ev.Time("last_event", t)
			}
			ev.Msg("silence: an expected account and region sent no event for longer than --silence-after")
		case !isSilent && s.silent[p]:
			s.log.Info().Str("account", p.account).Str("region", p.region).Time("last_event", t).Msg("silence: events again")
		}
		s.silent[p] = isSilent
	}
	s.m.silentRegions.Set(float64(len(out)))
	s.emitMetric(now, len(out))
	slices.SortFunc(out, func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.region, b.region))
	})
	return out
}

// EMFNamespace is the CloudWatch namespace of the embedded metric the
// streamer logs (the Terraform module's silent-regions alarm reads it).
const EMFNamespace = "sessionwatch"

// emitMetric logs the silent count as a CloudWatch embedded metric format
// line (metric SilentRegions, dimension QueueName): CloudWatch Logs turns
// it into a metric, with no agent and no cloudwatch:PutMetricData call.
// Other log readers see one more JSON line a minute.
func (s *silence) emitMetric(now time.Time, silent int) {
	aws := fmt.Sprintf(`{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":%q,"Dimensions":[["QueueName"]],"Metrics":[{"Name":"SilentRegions","Unit":"Count"}]}]}`,
		now.UnixMilli(), EMFNamespace)
	s.log.Info().RawJSON("_aws", []byte(aws)).Str("QueueName", s.queue).Int("SilentRegions", silent).Msg("silence metric")
}

// run checks at once (the metric has a first datapoint) and then every
// interval until ctx ends.
func (s *silence) run(ctx context.Context, every time.Duration) {
	s.check()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check()
		}
	}
}

// silenceMetrics are the gauges and counter of silence detection.
func silenceMetrics() (*prometheus.GaugeVec, prometheus.Gauge, prometheus.Counter) {
	last := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "last_event_timestamp_seconds",
		Help: "CloudTrail eventTime (Unix seconds, capped at now) of the last event seen, by account and region.",
	}, []string{"account", "region"})
	silent := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "silent_regions",
		Help: "Expected account and region pairs that sent no event for longer than --silence-after (expected: every pair seen, and --expect-regions).",
	})
	dropped := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "silence_pairs_dropped_total",
		Help: "Events of account and region pairs not followed for silence (beyond the 2,000 followed).",
	})
	return last, silent, dropped
}
