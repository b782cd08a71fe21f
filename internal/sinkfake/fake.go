// Package sinkfake holds protocol-level fakes of the services sessionwatch
// sends findings to: SNS (query protocol), EventBridge (JSON 1.1), Security
// Hub (REST JSON), a generic webhook receiver and a Splunk HTTP Event
// Collector, plus a fault-injecting proxy for an SQS emulator. Each is an
// httptest server that the real SDK clients or HTTP requests talk to. They
// enforce the services' per-call limits, reject malformed requests and
// record what they accepted, so tests assert on outcomes. Production code
// never imports this package.
package sinkfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Faults injects failures. The zero value injects none; methods are safe
// for concurrent use.
type Faults struct {
	mu         sync.Mutex
	throttle   int
	retryAfter time.Duration
	failOnce   map[string]int
	reject     map[string]bool
	delay      time.Duration
}

// Throttle answers the next n calls with the service's throttling error,
// with a Retry-After header when retryAfter > 0.
func (f *Faults) Throttle(n int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttle, f.retryAfter = n, retryAfter
}

// FailOnce fails the next delivery of each finding id with a retryable
// per-item error (where the protocol has per-item results).
func (f *Faults) FailOnce(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOnce == nil {
		f.failOnce = map[string]int{}
	}
	for _, id := range ids {
		f.failOnce[id]++
	}
}

// Reject fails every delivery of each finding id with a permanent error.
func (f *Faults) Reject(ids ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reject == nil {
		f.reject = map[string]bool{}
	}
	for _, id := range ids {
		f.reject[id] = true
	}
}

// Delay holds each answer for d (0 stops).
func (f *Faults) Delay(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delay = d
}

func (f *Faults) takeThrottle() (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.throttle <= 0 {
		return false, 0
	}
	f.throttle--
	return true, f.retryAfter
}

// itemFault says how an item fares: fail (retryable) once, or reject.
func (f *Faults) itemFault(id string) (fail, reject bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reject[id] {
		return false, true
	}
	if f.failOnce[id] > 0 {
		f.failOnce[id]--
		return true, false
	}
	return false, false
}

// wait applies the delay; it ends early when the request is abandoned.
func (f *Faults) wait(ctx context.Context) {
	f.mu.Lock()
	d := f.delay
	f.mu.Unlock()
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((d+time.Second-1)/time.Second)))
	}
}

// Received is one finding a fake accepted.
type Received struct {
	ID    string            // finding id, read from the body
	Body  []byte            // the message, event detail, finding or HEC event as sent
	Attrs map[string]string // message attributes or headers worth checking
}

// Record keeps what a fake accepted and what it refused as malformed.
type Record struct {
	mu        sync.Mutex
	items     []Received
	calls     int
	malformed []string
}

func (r *Record) add(items ...Received) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, items...)
}

func (r *Record) call() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
}

func (r *Record) refuse(format string, args ...any) string {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.malformed = append(r.malformed, msg)
	return msg
}

// Received returns the accepted findings, in arrival order.
func (r *Record) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.items...)
}

// Counts returns how many times each finding id was accepted.
func (r *Record) Counts() map[string]int {
	m := map[string]int{}
	for _, it := range r.Received() {
		m[it.ID]++
	}
	return m
}

// Calls is the number of requests that reached the handler.
func (r *Record) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Malformed lists the requests refused as malformed or over a limit.
func (r *Record) Malformed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.malformed...)
}

// FindingID reads a finding id from a rendering in any of sessionwatch's
// formats (native finding_id, OCSF finding_info.uid, ASFF Id), or from a
// HEC envelope's event.
func FindingID(body []byte) string {
	var v struct {
		FindingID   string `json:"finding_id"`
		FindingInfo struct {
			UID string `json:"uid"`
		} `json:"finding_info"`
		ID    string          `json:"Id"`
		Event json.RawMessage `json:"event"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	switch {
	case v.FindingID != "":
		return v.FindingID
	case v.FindingInfo.UID != "":
		return v.FindingInfo.UID
	case v.ID != "":
		return v.ID
	case len(v.Event) > 0:
		return FindingID(v.Event)
	}
	return ""
}

// signedV4 reports whether a request carries an AWS Signature Version 4.
func signedV4(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") && r.Header.Get("X-Amz-Date") != ""
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func isJSONObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}
