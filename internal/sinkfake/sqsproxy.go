package sinkfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// SQS limits of SendMessageBatch.
const (
	SQSMaxEntries    = 10
	SQSMaxBatchBytes = 1024 * 1024 // bodies and attributes of one call
)

// SQSProxy stands in front of an SQS emulator (local-aws-sqs) and injects
// faults into SendMessageBatch calls of the JSON protocol: throttling,
// delays, and per-entry failures (the entry is not forwarded and is added
// to the answer's Failed list, as SQS reports a partial failure). It also
// refuses calls over the service's limits, whatever the emulator does. Other
// calls pass through unchanged. Messages that got through are in the
// emulator's queue: tests read them from there.
type SQSProxy struct {
	*httptest.Server
	Faults
	Record
	target string
	client *http.Client
}

// NewSQSProxy proxies to the emulator at target; it stops at cleanup.
func NewSQSProxy(t testing.TB, target string) *SQSProxy {
	p := &SQSProxy{target: target, client: &http.Client{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

type sqsEntry struct {
	ID          string `json:"Id"`
	MessageBody string `json:"MessageBody"`
	Attrs       map[string]struct {
		DataType    string `json:"DataType"`
		StringValue string `json:"StringValue"`
	} `json:"MessageAttributes"`
}

type sqsFailed struct {
	ID          string `json:"Id"`
	Code        string `json:"Code"`
	Message     string `json:"Message"`
	SenderFault bool   `json:"SenderFault"`
}

func (p *SQSProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("X-Amz-Target") != "AmazonSQS.SendMessageBatch" {
		p.forward(w, r, body, nil)
		return
	}
	p.call()
	var in map[string]json.RawMessage
	var entries []sqsEntry
	if json.Unmarshal(body, &in) != nil || json.Unmarshal(in["Entries"], &entries) != nil {
		jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#InvalidParameterValue", p.refuse("malformed SendMessageBatch"))
		return
	}
	size := 0
	ids := map[string]bool{}
	for _, e := range entries {
		size += len(e.MessageBody)
		for k, v := range e.Attrs {
			size += len(k) + len(v.DataType) + len(v.StringValue)
		}
		if ids[e.ID] {
			jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#BatchEntryIdsNotDistinct", p.refuse("entry id %q twice", e.ID))
			return
		}
		ids[e.ID] = true
	}
	switch {
	case len(entries) == 0:
		jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#EmptyBatchRequest", p.refuse("empty batch"))
		return
	case len(entries) > SQSMaxEntries:
		jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#TooManyEntriesInBatchRequest", p.refuse("%d entries", len(entries)))
		return
	case size > SQSMaxBatchBytes:
		jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#BatchRequestTooLong", p.refuse("batch of %d bytes", size))
		return
	}
	p.wait(r.Context())
	if ok, after := p.takeThrottle(); ok {
		setRetryAfter(w, after)
		w.Header().Set("X-Amzn-Query-Error", "ThrottlingException;Sender")
		jsonError(w, http.StatusBadRequest, "com.amazonaws.sqs#ThrottlingException", "Rate exceeded")
		return
	}
	var keep []sqsEntry
	var failed []sqsFailed
	for _, e := range entries {
		fail, reject := p.itemFault(FindingID([]byte(e.MessageBody)))
		switch {
		case reject:
			failed = append(failed, sqsFailed{ID: e.ID, Code: "InvalidMessageContents", Message: "rejected by fault injection", SenderFault: true})
		case fail:
			failed = append(failed, sqsFailed{ID: e.ID, Code: "InternalError", Message: "transient failure", SenderFault: false})
		default:
			keep = append(keep, e)
			p.add(Received{ID: FindingID([]byte(e.MessageBody)), Body: []byte(e.MessageBody)})
		}
	}
	if len(keep) == 0 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_ = json.NewEncoder(w).Encode(map[string]any{"Successful": []any{}, "Failed": failed})
		return
	}
	if len(failed) > 0 {
		in["Entries"], _ = json.Marshal(keep)
		body, _ = json.Marshal(in)
	}
	p.forward(w, r, body, failed)
}

// forward sends the request on, adding failed entries to a batch answer.
func (p *SQSProxy) forward(w http.ResponseWriter, r *http.Request, body []byte, failed []sqsFailed) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.ContentLength = int64(len(body))
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if len(failed) > 0 && resp.StatusCode == http.StatusOK {
		var ans map[string]json.RawMessage
		if json.Unmarshal(out, &ans) == nil {
			var prev []sqsFailed
			_ = json.Unmarshal(ans["Failed"], &prev)
			ans["Failed"], _ = json.Marshal(append(prev, failed...))
			out, _ = json.Marshal(ans)
		}
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}
