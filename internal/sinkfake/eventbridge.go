package sinkfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sessionwatch/sessionwatch/internal/awsjson"
)

// EventBridge limits of PutEvents.
const (
	EventBridgeMaxEntries      = 10
	EventBridgeMaxRequestBytes = 256 * 1024
)

// EventBridge is a fake of EventBridge's PutEvents over the JSON 1.1
// protocol.
type EventBridge struct {
	*httptest.Server
	Faults
	Record
	mu    sync.Mutex
	buses map[string]bool
}

// NewEventBridge starts the fake with the given bus names ("default" is
// always there); it stops at cleanup.
func NewEventBridge(t testing.TB, buses ...string) *EventBridge {
	f := &EventBridge{buses: map[string]bool{"default": true}}
	for _, b := range buses {
		f.buses[b] = true
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

type ebEntry struct {
	Source       *string     `json:"Source"`
	DetailType   *string     `json:"DetailType"`
	Detail       *string     `json:"Detail"`
	EventBusName *string     `json:"EventBusName"`
	Resources    []string    `json:"Resources"`
	Time         json.Number `json:"Time"`
	TraceHeader  *string     `json:"TraceHeader"`
}

type ebResult struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// busName reads a bus name or a bus ARN.
func busName(s string) string {
	if strings.HasPrefix(s, "arn:") {
		if i := strings.LastIndex(s, "event-bus/"); i >= 0 {
			return s[i+len("event-bus/"):]
		}
	}
	return s
}

func (f *EventBridge) serve(w http.ResponseWriter, r *http.Request) {
	f.call()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		jsonError(w, http.StatusBadRequest, "SerializationException", f.refuse("want a JSON 1.1 POST"))
		return
	}
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", f.refuse("target %q", r.Header.Get("X-Amz-Target")))
		return
	}
	if !signedV4(r) {
		jsonError(w, http.StatusForbidden, "IncompleteSignatureException", f.refuse("request not signed with SigV4"))
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	var in struct {
		Entries    []ebEntry `json:"Entries"`
		EndpointID *string   `json:"EndpointId"`
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "SerializationException", f.refuse("decode: %v", err))
		return
	}
	if n := len(in.Entries); n < 1 || n > EventBridgeMaxEntries {
		jsonError(w, http.StatusBadRequest, "ValidationException", f.refuse("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10 (got %d)", n))
		return
	}
	total := 0
	for _, e := range in.Entries {
		total += 14 + len(deref(e.Source)) + len(deref(e.DetailType)) + len(deref(e.Detail))
		for _, res := range e.Resources {
			total += len(res)
		}
	}
	if total > EventBridgeMaxRequestBytes {
		jsonError(w, http.StatusBadRequest, "ValidationException", f.refuse("Total size of the entries in the request is over the limit (%d bytes)", total))
		return
	}
	for _, e := range in.Entries {
		f.mu.Lock()
		known := f.buses[busName(deref(e.EventBusName))] || e.EventBusName == nil
		f.mu.Unlock()
		if !known {
			jsonError(w, http.StatusBadRequest, "ResourceNotFoundException", "Event bus "+deref(e.EventBusName)+" does not exist.")
			return
		}
	}
	f.wait(r.Context())
	if ok, after := f.takeThrottle(); ok {
		setRetryAfter(w, after)
		jsonError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	}
	out := struct {
		Entries          []ebResult `json:"Entries"`
		FailedEntryCount int        `json:"FailedEntryCount"`
	}{}
	for _, e := range in.Entries {
		var res ebResult
		switch {
		case deref(e.Source) == "" || deref(e.DetailType) == "" || deref(e.Detail) == "":
			res = ebResult{ErrorCode: "InvalidArgument", ErrorMessage: "Parameters Source, DetailType and Detail are required"}
		case strings.HasPrefix(deref(e.Source), "aws."):
			res = ebResult{ErrorCode: "NotAuthorizedForSourceException", ErrorMessage: "Not authorized for the source."}
		case !isJSONObject([]byte(*e.Detail)):
			res = ebResult{ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed."}
		}
		if res.ErrorCode == "" {
			id := FindingID([]byte(*e.Detail))
			fail, reject := f.itemFault(id)
			switch {
			case reject:
				res = ebResult{ErrorCode: "InvalidArgument", ErrorMessage: "rejected by fault injection"}
			case fail:
				res = ebResult{ErrorCode: "InternalFailure", ErrorMessage: "transient failure"}
			default:
				f.add(Received{ID: id, Body: []byte(*e.Detail), Attrs: map[string]string{
					"source": *e.Source, "detail-type": *e.DetailType, "bus": busName(deref(e.EventBusName)),
					"resources": strings.Join(e.Resources, ","), "time": e.Time.String(),
				}})
				res = ebResult{EventID: newID()}
			}
		}
		if res.ErrorCode != "" {
			out.FailedEntryCount++
		}
		out.Entries = append(out.Entries, res)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// jsonError answers in the AWS JSON protocols' error shape.
func jsonError(w http.ResponseWriter, status int, code, msg string) {
	awsjson.WriteError(w, awsjson.JSON11, status, code, msg)
}
