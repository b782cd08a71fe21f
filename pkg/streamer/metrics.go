package streamer

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessionwatch/sessionwatch/pkg/classify"
	"github.com/sessionwatch/sessionwatch/pkg/sessions"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
)

const namespace = "sessionwatch"

// Release reasons (the "reason" label of messages_released_total).
const (
	reasonRetry    = "retry"    // still failing after RetryHold
	reasonShutdown = "shutdown" // in flight when the streamer stopped
)

// Metrics are the streamer's Prometheus metrics. Every handle is looked up
// once, here; label values are fixed strings (verdicts, sink names,
// outcomes), never values read from a message.
type Metrics struct {
	received        prometheus.Counter
	receiveErrors   prometheus.Counter
	deleted         prometheus.Counter
	deleteFailures  prometheus.Counter
	released        map[string]prometheus.Counter
	releaseFailures prometheus.Counter
	decodeErrors    prometheus.Counter
	rejected        prometheus.Counter
	outOfScope      prometheus.Counter
	storeFailures   prometheus.Counter
	verdicts        map[classify.Verdict]prometheus.Counter
	findings        *prometheus.CounterVec // by sink, accepted
	sinkFailures    *prometheus.CounterVec // by sink, findings not accepted
	sinkFailing     *prometheus.GaugeVec   // by sink, 1 while its last write failed
	sinkRetries     *prometheus.CounterVec // by sink and reason, the sinks' own retries (sink.Observer)
	sinkGaveUp      *prometheus.CounterVec // by sink and reason, findings a sink's retries gave up on
	orphanConfirmed prometheus.Counter
	orphanCleared   prometheus.Counter
	replicaWaits    prometheus.Counter
	replicaVerdicts map[classify.Verdict]prometheus.Counter // after waiting for the replica
	extended        prometheus.Counter
	extendFailures  prometheus.Counter
	s3Objects       prometheus.Counter
	s3Errors        prometheus.Counter
	inFlight        prometheus.Gauge
	held            prometheus.Gauge
	ackLatency      prometheus.Histogram

	verdictLogObjects  prometheus.Counter
	verdictLogEntries  prometheus.Counter
	verdictLogBytes    prometheus.Counter
	verdictLogFailures prometheus.Counter
	verdictLogSkipped  prometheus.Counter
	verdictLogWaiting  prometheus.Gauge

	lastEvent           *prometheus.GaugeVec // by account and region
	silentRegions       prometheus.Gauge
	silencePairsDropped prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests that only read them).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "streamer", Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "streamer", Name: name, Help: help})
	}
	released := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "messages_released_total",
		Help: "Messages handed back to the queue undeleted (visibility changed), by reason: retry (still failing after the in-process retries) or shutdown.",
	}, []string{"reason"})
	verdicts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "verdicts_total",
		Help: "Events classified, by final verdict (after the orphan re-check).",
	}, []string{"verdict"})
	orphans := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "orphan_rechecks_total",
		Help: "Orphaned verdicts re-checked after the grace period, by outcome: confirmed (still orphaned) or cleared (a session appeared).",
	}, []string{"outcome"})
	confirmed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "streamer", Name: "replica_confirmations_total",
		Help: "Events held until the session replica had every write up to their time, by the final verdict they then got.",
	}, []string{"verdict"})
	m := &Metrics{
		received:        counter("messages_received_total", "Messages received from the queue."),
		receiveErrors:   counter("receive_errors_total", "ReceiveMessage calls that failed."),
		deleted:         counter("messages_deleted_total", "Messages deleted after every finding they produced was accepted by every sink."),
		deleteFailures:  counter("message_delete_failures_total", "Delete entries that failed (the message comes back after its visibility timeout)."),
		releaseFailures: counter("message_release_failures_total", "Visibility changes releasing a message that failed (it comes back after its visibility timeout)."),
		decodeErrors:    counter("decode_errors_total", "Messages (or records of S3 log objects) that could not be decoded; messages are left for the redrive policy."),
		rejected:        counter("rejected_total", "Envelopes or records rejected (wrong source or detail-type, account outside the allowlist), deleted unclassified."),
		outOfScope:      counter("out_of_scope_events_total", "Events that are not classified (other event names or sources, service callers), deleted."),
		storeFailures:   counter("store_failures_total", "Classifications that failed because the session store did not answer; the message is retried."),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "streamer", Name: "findings_total",
			Help: "Findings accepted, by sink.",
		}, []string{"sink"}),
		sinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "streamer", Name: "sink_failures_total",
			Help: "Findings a sink did not accept (retried), by sink.",
		}, []string{"sink"}),
		sinkFailing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "streamer", Name: "sink_failing",
			Help: "1 while a sink's last write did not accept every finding (findings wait and are retried), else 0, by sink.",
		}, []string{"sink"}),
		sinkRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sink", Name: "retries_total",
			Help: "Calls a sink retried within one write, by sink and reason (throttled counts the throttles).",
		}, []string{"sink", "reason"}),
		sinkGaveUp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "sink", Name: "failures_total",
			Help: "Findings a sink did not deliver after its own retries (the streamer retries them), by sink and reason.",
		}, []string{"sink", "reason"}),
		extended:       counter("visibility_extensions_total", "Visibility extensions of messages still in flight."),
		extendFailures: counter("visibility_extension_failures_total", "Visibility extensions that failed."),
		s3Objects:      counter("s3_objects_total", "CloudTrail log objects fetched for S3 notifications."),
		s3Errors:       counter("s3_errors_total", "Log object fetches that failed (the message is retried)."),
		inFlight:       gauge("messages_in_flight", "Messages received and not yet deleted, released or left for the redrive policy."),
		held:           gauge("messages_held", "Messages waiting on the timer heap (orphan grace or retry back-off)."),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "streamer", Name: "receive_to_ack_seconds",
			Help:    "Time from receiving a message to its delete being confirmed.",
			Buckets: prometheus.ExponentialBucketsRange(0.005, 600, 16),
		}),
		verdictLogObjects:  counter("verdict_log_objects_total", "Verdict log objects written."),
		verdictLogEntries:  counter("verdict_log_entries_total", "Events written to the verdict log (one line each)."),
		verdictLogBytes:    counter("verdict_log_bytes_total", "Bytes (gzip) written to the verdict log."),
		verdictLogFailures: counter("verdict_log_failures_total", "Verdict log writes that failed; their messages wait, undeleted, for the next write."),
		verdictLogSkipped:  counter("verdict_log_skipped_total", "Classified events left out of the verdict log because they have no eventID or eventTime."),
		verdictLogWaiting:  gauge("verdict_log_waiting", "Messages whose findings are safe, waiting for the verdict log to be written before they are deleted."),
		replicaWaits:       counter("replica_waits_total", "Times an event was held in process because the session replica could not answer it yet."),
		released:           map[string]prometheus.Counter{},
		verdicts:           map[classify.Verdict]prometheus.Counter{},
		replicaVerdicts:    map[classify.Verdict]prometheus.Counter{},
	}
	for _, r := range []string{reasonRetry, reasonShutdown} {
		m.released[r] = released.WithLabelValues(r)
	}
	for _, v := range append(classify.AllVerdicts(), classify.PipelineTampered) {
		m.verdicts[v] = verdicts.WithLabelValues(string(v))
		m.replicaVerdicts[v] = confirmed.WithLabelValues(string(v))
	}
	m.lastEvent, m.silentRegions, m.silencePairsDropped = silenceMetrics()
	m.orphanConfirmed = orphans.WithLabelValues("confirmed")
	m.orphanCleared = orphans.WithLabelValues("cleared")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.received, m.receiveErrors, m.deleted, m.deleteFailures, released, m.releaseFailures,
		m.decodeErrors, m.rejected, m.outOfScope, m.storeFailures, verdicts, m.findings,
		m.sinkFailures, m.sinkFailing, m.sinkRetries, m.sinkGaveUp, orphans, m.extended, m.extendFailures, m.s3Objects, m.s3Errors,
		m.inFlight, m.held, m.ackLatency, m.replicaWaits, confirmed,
		m.verdictLogObjects, m.verdictLogEntries, m.verdictLogBytes, m.verdictLogFailures, m.verdictLogSkipped, m.verdictLogWaiting,
		m.lastEvent, m.silentRegions, m.silencePairsDropped,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("streamer: register metrics: %w", err)
		}
	}
	return m, nil
}

// sinkCounters are one sink's handles, looked up once.
type sinkCounters struct {
	accepted, failed prometheus.Counter
	failing          prometheus.Gauge
}

func (m *Metrics) forSink(name string) sinkCounters {
	return sinkCounters{accepted: m.findings.WithLabelValues(name), failed: m.sinkFailures.WithLabelValues(name),
		failing: m.sinkFailing.WithLabelValues(name)}
}

// Metrics is the sinks' Observer (sink.Options.Observer): their retries
// and give-ups, by sink name and a fixed set of reasons.
var _ sink.Observer = (*Metrics)(nil)

// Delivered is counted by the streamer itself (findings_total).
func (m *Metrics) Delivered(string, int) {}

// Failed counts findings a sink gave up on.
func (m *Metrics) Failed(name, reason string, n int) {
	m.sinkGaveUp.WithLabelValues(name, reason).Add(float64(n))
}

// Retried counts one retry of a sink's call.
func (m *Metrics) Retried(name, reason string) { m.sinkRetries.WithLabelValues(name, reason).Inc() }

// RegisterStoreStats exports the session cache's counters (store lookups,
// hits, misses, errors, queries) read from stats at each scrape.
func RegisterStoreStats(reg prometheus.Registerer, stats func() sessions.CacheStats) error {
	counters := []struct {
		name, help string
		value      func(sessions.CacheStats) uint64
	}{
		{"lookups_total", "Session cache lookups.", func(s sessions.CacheStats) uint64 { return s.Lookups }},
		{"hits_total", "Session cache lookups answered from the cache.", func(s sessions.CacheStats) uint64 { return s.Hits }},
		{"misses_total", "Session cache lookups that read the store (or joined a read in flight).", func(s sessions.CacheStats) uint64 { return s.Misses }},
		{"queries_total", "Reads of the session table.", func(s sessions.CacheStats) uint64 { return s.Queries }},
		{"errors_total", "Session lookups that failed.", func(s sessions.CacheStats) uint64 { return s.Errors }},
	}
	for _, c := range counters {
		value := c.value
		f := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "store", Name: c.name, Help: c.help},
			func() float64 { return float64(value(stats())) })
		if err := reg.Register(f); err != nil {
			return fmt.Errorf("streamer: register store metrics: %w", err)
		}
	}
	return nil
}

// RegisterReplicaStats exports the session replica's state (sessions,
// bytes, the watermark's age, refreshes, stream lag) and where its finder's
// answers came from, read from replica and finder at each scrape.
func RegisterReplicaStats(reg prometheus.Registerer, replica func() sessions.ReplicaStats, finder func() sessions.ReplicaFinderStats) error {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Subsystem: "replica", Name: name, Help: help}
	}
	gauge := func(name, help string, value func(sessions.ReplicaStats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts(name, help)), func() float64 { return value(replica()) })
	}
	counter := func(name, help string, value func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts(opts(name, help)), func() float64 { return float64(value()) })
	}
	collectors := []prometheus.Collector{
		gauge("sessions", "Sessions held in the replica.", func(s sessions.ReplicaStats) float64 { return float64(s.Sessions) }),
		gauge("bytes", "Estimated heap the replica holds.", func(s sessions.ReplicaStats) float64 { return float64(s.Bytes) }),
		gauge("watermark_age_seconds", "How far the replica's watermark (every write before it applied) is behind this host's clock.",
			func(s sessions.ReplicaStats) float64 { return time.Since(s.Watermark).Seconds() }),
		counter("refreshes_total", "Re-scans of the session table after the first load.", func() uint64 { return replica().Refreshes }),
		counter("refresh_errors_total", "Re-scans that failed (the watermark waits; the next one is retried).", func() uint64 { return replica().RefreshErrors }),
		counter("full_resyncs_total", "Re-scans that read the whole table (with a stream: full re-loads).", func() uint64 { return replica().FullResyncs }),
		gauge("stream_shards", "Shards of the session table's stream being read (0 without --session-stream).",
			func(s sessions.ReplicaStats) float64 { return float64(s.StreamShards) }),
		counter("stream_records_total", "Stream records applied to the replica.", func() uint64 { return replica().StreamRecords }),
		counter("stream_errors_total", "Stream calls that failed (each retried with back-off, or followed by a full re-load; the watermark waits).",
			func() uint64 { return replica().StreamErrors }),
		gauge("stream_lag_seconds", "With --session-stream, how far the replica's watermark is behind this host's clock (0 without a stream).",
			func(s sessions.ReplicaStats) float64 { return s.StreamLag.Seconds() }),
	}
	answers := []struct {
		source string
		value  func(sessions.ReplicaFinderStats) uint64
	}{
		{"replica", func(s sessions.ReplicaFinderStats) uint64 { return s.FromReplica }},
		{"not_final", func(s sessions.ReplicaFinderStats) uint64 { return s.NotFinal }},
		{"fallback", func(s sessions.ReplicaFinderStats) uint64 { return s.Fallbacks }},
	}
	for _, a := range answers {
		value := a.value
		collectors = append(collectors, prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: "replica", Name: "lookups_total",
			Help:        "Session lookups, by answer: replica (from memory), not_final (the event waits), fallback (the table's Query path).",
			ConstLabels: prometheus.Labels{"answer": a.source}}, func() float64 { return float64(value(finder())) }))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("streamer: register replica metrics: %w", err)
		}
	}
	return nil
}
