package sinkfake

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// SNS limits of PublishBatch.
const (
	SNSMaxEntries    = 10
	SNSMaxBatchBytes = 256 * 1024 // messages and attributes together
)

// SNS is a fake of SNS's PublishBatch over the query protocol (form-encoded
// requests, XML answers), which aws-sdk-go-v2's sns client speaks.
type SNS struct {
	*httptest.Server
	Faults
	Record
	mu     sync.Mutex
	topics map[string]bool
}

// NewSNS starts the fake with the given topic ARNs; it stops at cleanup.
func NewSNS(t testing.TB, topics ...string) *SNS {
	f := &SNS{topics: map[string]bool{}}
	for _, tp := range topics {
		f.topics[tp] = true
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

var batchEntryID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

type snsEntry struct {
	ID, Message, GroupID, DedupID string
	Attrs                         map[string]string
	size                          int
}

func (f *SNS) serve(w http.ResponseWriter, r *http.Request) {
	f.call()
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		snsError(w, http.StatusBadRequest, "InvalidAction", f.refuse("want a form-encoded POST"))
		return
	}
	if !signedV4(r) {
		snsError(w, http.StatusForbidden, "IncompleteSignature", f.refuse("request not signed with SigV4"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		snsError(w, http.StatusBadRequest, "MalformedQueryString", f.refuse("read body: %v", err))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		snsError(w, http.StatusBadRequest, "MalformedQueryString", f.refuse("parse form: %v", err))
		return
	}
	if form.Get("Action") != "PublishBatch" || form.Get("Version") != "2010-03-31" {
		snsError(w, http.StatusBadRequest, "InvalidAction", f.refuse("action %q version %q", form.Get("Action"), form.Get("Version")))
		return
	}
	topic := form.Get("TopicArn")
	f.mu.Lock()
	known := f.topics[topic]
	f.mu.Unlock()
	if !known {
		snsError(w, http.StatusNotFound, "NotFound", "Topic does not exist")
		return
	}
	entries, err := parseSNSEntries(form)
	if err != nil {
		snsError(w, http.StatusBadRequest, "InvalidParameter", f.refuse("%v", err))
		return
	}
	switch total := 0; {
	case len(entries) == 0:
		snsError(w, http.StatusBadRequest, "EmptyBatchRequest", f.refuse("empty batch"))
		return
	case len(entries) > SNSMaxEntries:
		snsError(w, http.StatusBadRequest, "TooManyEntriesInBatchRequest", f.refuse("%d entries", len(entries)))
		return
	default:
		seen := map[string]bool{}
		for _, e := range entries {
			if !batchEntryID.MatchString(e.ID) {
				snsError(w, http.StatusBadRequest, "InvalidBatchEntryId", f.refuse("entry id %q", e.ID))
				return
			}
			if seen[e.ID] {
				snsError(w, http.StatusBadRequest, "BatchEntryIdsNotDistinct", f.refuse("entry id %q twice", e.ID))
				return
			}
			seen[e.ID] = true
			total += e.size
		}
		if total > SNSMaxBatchBytes {
			snsError(w, http.StatusBadRequest, "BatchRequestTooLong", f.refuse("batch of %d bytes", total))
			return
		}
		if strings.HasSuffix(topic, ".fifo") {
			for _, e := range entries {
				if e.GroupID == "" {
					snsError(w, http.StatusBadRequest, "InvalidParameter", f.refuse("FIFO entry without MessageGroupId"))
					return
				}
			}
		}
	}
	f.wait(r.Context())
	if ok, after := f.takeThrottle(); ok {
		setRetryAfter(w, after)
		snsError(w, http.StatusTooManyRequests, "Throttled", "Rate exceeded")
		return
	}
	var res snsBatchResult
	for _, e := range entries {
		id := FindingID([]byte(e.Message))
		if e.Message == "" {
			res.Failed = append(res.Failed, snsFailed{ID: e.ID, Code: "InvalidParameter", Message: "Empty message", SenderFault: true})
			continue
		}
		fail, reject := f.itemFault(id)
		switch {
		case reject:
			res.Failed = append(res.Failed, snsFailed{ID: e.ID, Code: "InvalidParameter", Message: "rejected by fault injection", SenderFault: true})
		case fail:
			res.Failed = append(res.Failed, snsFailed{ID: e.ID, Code: "InternalError", Message: "transient failure", SenderFault: false})
		default:
			f.add(Received{ID: id, Body: []byte(e.Message), Attrs: e.Attrs})
			res.Successful = append(res.Successful, snsOK{ID: e.ID, MessageID: newID()})
		}
	}
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(snsPublishBatchResponse{Result: res, RequestID: newID()})
}

// parseSNSEntries reads PublishBatchRequestEntries.member.N.* fields.
func parseSNSEntries(form url.Values) ([]snsEntry, error) {
	const prefix = "PublishBatchRequestEntries.member."
	byN := map[int]*snsEntry{}
	attrNames := map[int]map[int]string{}
	attrValues := map[int]map[int]string{}
	for key, vs := range form {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		nStr, field, ok := strings.Cut(strings.TrimPrefix(key, prefix), ".")
		n, err := strconv.Atoi(nStr)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("bad entry key %q", key)
		}
		e := byN[n]
		if e == nil {
			e = &snsEntry{Attrs: map[string]string{}}
			byN[n] = e
		}
		v := vs[0]
		switch {
		case field == "Id":
			e.ID = v
		case field == "Message":
			e.Message = v
			e.size += len(v)
		case field == "MessageGroupId":
			e.GroupID = v
		case field == "MessageDeduplicationId":
			e.DedupID = v
		case field == "Subject", field == "MessageStructure":
		case strings.HasPrefix(field, "MessageAttributes.entry."):
			mStr, sub, _ := strings.Cut(strings.TrimPrefix(field, "MessageAttributes.entry."), ".")
			m, err := strconv.Atoi(mStr)
			if err != nil {
				return nil, fmt.Errorf("bad attribute key %q", key)
			}
			switch sub {
			case "Name":
				if attrNames[n] == nil {
					attrNames[n] = map[int]string{}
				}
				attrNames[n][m] = v
			case "Value.StringValue":
				if attrValues[n] == nil {
					attrValues[n] = map[int]string{}
				}
				attrValues[n][m] = v
			case "Value.DataType":
				e.size += len(v)
			}
		default:
			return nil, fmt.Errorf("unknown entry field %q", field)
		}
	}
	entries := make([]snsEntry, 0, len(byN))
	for n := 1; n <= len(byN); n++ {
		e, ok := byN[n]
		if !ok {
			return nil, fmt.Errorf("entries not numbered 1..%d", len(byN))
		}
		if e.ID == "" {
			return nil, fmt.Errorf("entry %d has no Id", n)
		}
		for m, name := range attrNames[n] {
			e.Attrs[name] = attrValues[n][m]
			e.size += len(name) + len(attrValues[n][m])
		}
		entries = append(entries, *e)
	}
	return entries, nil
}

type snsPublishBatchResponse struct {
	XMLName   xml.Name       `xml:"http://sns.amazonaws.com/doc/2010-03-31/ PublishBatchResponse"`
	Result    snsBatchResult `xml:"PublishBatchResult"`
	RequestID string         `xml:"ResponseMetadata>RequestId"`
}

type snsBatchResult struct {
	Successful []snsOK     `xml:"Successful>member"`
	Failed     []snsFailed `xml:"Failed>member"`
}

type snsOK struct {
	ID        string `xml:"Id"`
	MessageID string `xml:"MessageId"`
}

type snsFailed struct {
	ID          string `xml:"Id"`
	Code        string `xml:"Code"`
	Message     string `xml:"Message"`
	SenderFault bool   `xml:"SenderFault"`
}

func snsError(w http.ResponseWriter, status int, code, msg string) {
	kind := "Sender"
	if status >= 500 {
		kind = "Receiver"
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName   xml.Name `xml:"http://sns.amazonaws.com/doc/2010-03-31/ ErrorResponse"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Type: kind, Code: code, Message: msg, RequestID: newID()})
}
