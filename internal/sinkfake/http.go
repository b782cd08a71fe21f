package sinkfake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Webhook is a receiver of signed JSON webhooks: one finding per POST, the
// body's HMAC-SHA256 under Key in SignatureHeader as "sha256=<hex>".
type Webhook struct {
	*httptest.Server
	Faults
	Record
	Key             []byte
	SignatureHeader string
	// RequireHeaders must be present with these values.
	RequireHeaders map[string]string
	MaxBodyBytes   int64
}

// NewWebhook starts the receiver; it stops at cleanup.
func NewWebhook(t testing.TB, key []byte, signatureHeader string) *Webhook {
	f := &Webhook{Key: key, SignatureHeader: signatureHeader, RequireHeaders: map[string]string{}, MaxBodyBytes: 1 << 20}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	f.call()
	if r.Method != http.MethodPost {
		http.Error(w, f.refuse("method %s", r.Method), http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		http.Error(w, f.refuse("content type %q", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	for k, v := range f.RequireHeaders {
		if r.Header.Get(k) != v {
			http.Error(w, f.refuse("header %s missing or wrong", k), http.StatusForbidden)
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, f.MaxBodyBytes+1))
	if err != nil || int64(len(body)) > f.MaxBodyBytes {
		http.Error(w, f.refuse("body over %d bytes", f.MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	m := hmac.New(sha256.New, f.Key)
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get(f.SignatureHeader)), []byte(want)) {
		http.Error(w, f.refuse("bad signature"), http.StatusUnauthorized)
		return
	}
	if !isJSONObject(body) {
		http.Error(w, f.refuse("body is not a JSON object"), http.StatusBadRequest)
		return
	}
	f.wait(r.Context())
	if ok, after := f.takeThrottle(); ok {
		setRetryAfter(w, after)
		http.Error(w, "slow down", http.StatusTooManyRequests)
		return
	}
	id := FindingID(body)
	fail, reject := f.itemFault(id)
	switch {
	case reject:
		http.Error(w, "rejected by fault injection", http.StatusUnprocessableEntity)
	case fail:
		http.Error(w, "transient failure", http.StatusServiceUnavailable)
	default:
		f.add(Received{ID: id, Body: body, Attrs: map[string]string{"finding-id-header": r.Header.Get("X-Sessionwatch-Finding-Id")}})
		w.WriteHeader(http.StatusNoContent)
	}
}

// HEC is a Splunk HTTP Event Collector fake: "Authorization: Splunk
// <Token>", a body of concatenated JSON event envelopes, answers
// {"text","code"} with invalid-event-number on a bad event. Like Splunk, it
// indexes the events before an invalid one.
type HEC struct {
	*httptest.Server
	Faults
	Record
	Token        string
	MaxBodyBytes int64
}

// NewHEC starts the fake; it stops at cleanup.
func NewHEC(t testing.TB, token string) *HEC {
	f := &HEC{Token: token, MaxBodyBytes: 1 << 20}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func hecAnswer(w http.ResponseWriter, status int, text string, code int, invalid *int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	a := map[string]any{"text": text, "code": code}
	if invalid != nil {
		a["invalid-event-number"] = *invalid
	}
	_ = json.NewEncoder(w).Encode(a)
}

func (f *HEC) serve(w http.ResponseWriter, r *http.Request) {
	f.call()
	if r.Method != http.MethodPost {
		hecAnswer(w, http.StatusBadRequest, f.refuse("method %s", r.Method), 6, nil)
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		f.refuse("no Authorization")
		hecAnswer(w, http.StatusUnauthorized, "Token is required", 2, nil)
		return
	}
	if tok, ok := strings.CutPrefix(auth, "Splunk "); !ok || tok != f.Token {
		f.refuse("bad Authorization")
		hecAnswer(w, http.StatusForbidden, "Invalid token", 4, nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, f.MaxBodyBytes+1))
	if err != nil || int64(len(body)) > f.MaxBodyBytes {
		hecAnswer(w, http.StatusRequestEntityTooLarge, f.refuse("body over %d bytes", f.MaxBodyBytes), 6, nil)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var events []json.RawMessage
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			n := len(events)
			hecAnswer(w, http.StatusBadRequest, f.refuse("Invalid data format"), 6, &n)
			return
		}
		events = append(events, raw)
	}
	if len(events) == 0 {
		hecAnswer(w, http.StatusBadRequest, f.refuse("No data"), 5, nil)
		return
	}
	for i, raw := range events {
		var env struct {
			Event json.RawMessage `json:"event"`
			Time  any             `json:"time"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || !isJSONObject(raw) {
			hecAnswer(w, http.StatusBadRequest, f.refuse("Invalid data format"), 6, &i)
			return
		}
		if len(env.Event) == 0 || string(env.Event) == "null" || string(env.Event) == `""` {
			hecAnswer(w, http.StatusBadRequest, f.refuse("Event field is required"), 12, &i)
			return
		}
		if _, isNum := env.Time.(float64); env.Time != nil && !isNum {
			if s, isStr := env.Time.(string); !isStr || s == "" {
				hecAnswer(w, http.StatusBadRequest, f.refuse("Invalid data format (time)"), 6, &i)
				return
			}
		}
	}
	f.wait(r.Context())
	if ok, after := f.takeThrottle(); ok {
		setRetryAfter(w, after)
		hecAnswer(w, http.StatusServiceUnavailable, "Server is busy", 9, nil)
		return
	}
	for _, raw := range events {
		if fail, _ := f.peek(FindingID(raw)); fail {
			f.itemFault(FindingID(raw))
			hecAnswer(w, http.StatusServiceUnavailable, "Server is busy", 9, nil)
			return
		}
	}
	for i, raw := range events {
		id := FindingID(raw)
		if _, reject := f.itemFault(id); reject {
			hecAnswer(w, http.StatusBadRequest, "Invalid data format", 6, &i)
			return
		}
		f.add(Received{ID: id, Body: raw})
	}
	hecAnswer(w, http.StatusOK, "Success", 0, nil)
}

// peek reports an item's fault without consuming a FailOnce.
func (f *Faults) peek(id string) (fail, reject bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failOnce[id] > 0, f.reject[id]
}
