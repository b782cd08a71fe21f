package cloudtrailfake

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/sessionwatch/sessionwatch/internal/awsjson"
)

const (
	// The SDK sends the short target; older clients the qualified one.
	lookupTarget          = "CloudTrail_20131101.LookupEvents"
	lookupTargetQualified = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents"
	lookupMaxPage         = 50
	lookupHorizon         = 90 * 24 * time.Hour
	throttleMessage       = "Rate exceeded"
)

// CloudTrail fakes LookupEvents: the management events of each account and
// region, newest first, 50 a page at most, filtered by exactly zero or one
// lookup attribute and a time range, within the last 90 days, paced by a
// token bucket per account and region that answers ThrottlingException
// when empty.
type CloudTrail struct {
	srv      *Server
	tokenKey []byte

	mu      sync.Mutex
	events  map[string][]lookupEvent // account/region → newest first
	buckets map[string]*rate.Limiter
	stats   map[string]*LookupStats
}

// LookupStats counts the LookupEvents calls of one account and region.
type LookupStats struct {
	Calls     int // every call, throttled or not
	Throttled int // answered ThrottlingException
	Pages     int // answered with a page
	Events    int // events returned
	// Accepted counts the calls let through, First and Last when the first
	// and last of them came.
	Accepted    int
	First, Last time.Time
}

// Rate is the pace of the accepted calls, per second: (Accepted-1) over
// the time from the first to the last; 0 for fewer than two calls.
func (s LookupStats) Rate() float64 {
	if s.Accepted < 2 || !s.Last.After(s.First) {
		return 0
	}
	return float64(s.Accepted-1) / s.Last.Sub(s.First).Seconds()
}

type lookupEvent struct {
	ID, Name, Source, Username, AccessKeyID, ReadOnly string
	Time                                              time.Time
	Resources                                         []lookupResource
	Record                                            string
}

type lookupResource struct {
	ResourceType string `json:",omitempty"`
	ResourceName string `json:",omitempty"`
}

func newCloudTrail(s *Server) *CloudTrail {
	key := make([]byte, 32)
	copy(key, randomHex(16))
	return &CloudTrail{srv: s, tokenKey: key, events: map[string][]lookupEvent{},
		buckets: map[string]*rate.Limiter{}, stats: map[string]*LookupStats{}}
}

func scopeKey(account, region string) string { return account + "/" + region }

// Add stores CloudTrail records (bare JSON) in the account
// (recipientAccountId) and region (awsRegion) they name.
func (c *CloudTrail) Add(records ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	touched := map[string]bool{}
	for _, rec := range records {
		var r struct {
			EventID      string `json:"eventID"`
			EventName    string `json:"eventName"`
			EventSource  string `json:"eventSource"`
			EventTime    string `json:"eventTime"`
			AWSRegion    string `json:"awsRegion"`
			Recipient    string `json:"recipientAccountId"`
			ReadOnly     *bool  `json:"readOnly"`
			UserIdentity struct {
				UserName    string `json:"userName"`
				ARN         string `json:"arn"`
				PrincipalID string `json:"principalId"`
				AccessKeyID string `json:"accessKeyId"`
			} `json:"userIdentity"`
			Resources []struct {
				ARN  string `json:"ARN"`
				Type string `json:"type"`
			} `json:"resources"`
		}
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("cloudtrailfake: record: %w", err)
		}
		t, err := time.Parse(time.RFC3339, r.EventTime)
		if err != nil {
			return fmt.Errorf("cloudtrailfake: record %s: eventTime: %w", r.EventID, err)
		}
		if r.Recipient == "" || r.AWSRegion == "" || r.EventID == "" {
			return fmt.Errorf("cloudtrailfake: record %q lacks recipientAccountId, awsRegion or eventID", r.EventID)
		}
		ev := lookupEvent{ID: r.EventID, Name: r.EventName, Source: r.EventSource, Time: t.UTC(),
			AccessKeyID: r.UserIdentity.AccessKeyID, Record: string(rec), ReadOnly: "false"}
		if r.ReadOnly != nil && *r.ReadOnly {
			ev.ReadOnly = "true"
		}
		// Event history shows the user name, else the session name.
		ev.Username = r.UserIdentity.UserName
		if ev.Username == "" {
			if i := strings.LastIndexByte(r.UserIdentity.ARN, '/'); i >= 0 {
				ev.Username = r.UserIdentity.ARN[i+1:]
			} else {
				ev.Username = r.UserIdentity.PrincipalID
			}
		}
		for _, res := range r.Resources {
			ev.Resources = append(ev.Resources, lookupResource{ResourceType: res.Type, ResourceName: res.ARN})
		}
		k := scopeKey(r.Recipient, r.AWSRegion)
		c.events[k] = append(c.events[k], ev)
		touched[k] = true
	}
	for k := range touched {
		slices.SortFunc(c.events[k], newestFirst)
	}
	return nil
}

func newestFirst(a, b lookupEvent) int {
	return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
}

// Stats returns the call counts of one account and region.
func (c *CloudTrail) Stats(account, region string) LookupStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.stats[scopeKey(account, region)]; st != nil {
		return *st
	}
	return LookupStats{}
}

// TotalStats adds up the counts of every account and region (First, Last
// and so Rate stay zero: the limit is per account and region).
func (c *CloudTrail) TotalStats() LookupStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t LookupStats
	for _, st := range c.stats {
		t.Calls += st.Calls
		t.Throttled += st.Throttled
		t.Pages += st.Pages
		t.Events += st.Events
		t.Accepted += st.Accepted
	}
	return t
}

type lookupInput struct {
	LookupAttributes []struct {
		AttributeKey   string
		AttributeValue string
	}
	StartTime     *float64
	EndTime       *float64
	EventCategory *string
	MaxResults    *int
	NextToken     *string
}

// lookupQuery is what a NextToken is bound to: a token from another query
// is invalid.
type lookupQuery struct {
	Account, Region, Key, Value, Category string
	Start, End                            int64
}

type lookupCursor struct {
	Q    lookupQuery
	Time int64  // unix nanoseconds of the last event returned
	ID   string // its id
}

func (c *CloudTrail) serve(w http.ResponseWriter, r *http.Request, account, region string) {
	if r.Method != http.MethodPost {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidAction", "want POST")
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != lookupTarget && target != lookupTargetQualified {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "UnknownOperationException", "operation %q is not faked", target)
		return
	}
	// Read the whole request first, even to refuse it: answering before
	// the body is read makes the server drop the connection.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "SerializationException", "read body: %v", err)
		return
	}
	if !c.admit(account, region) {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "ThrottlingException", throttleMessage)
		return
	}
	var in lookupInput
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "SerializationException", "decode body: %v", err)
		return
	}
	q := lookupQuery{Account: account, Region: region}
	if len(in.LookupAttributes) > 1 {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidLookupAttributesException", "You can specify only one lookup attribute.")
		return
	}
	if len(in.LookupAttributes) == 1 {
		q.Key, q.Value = in.LookupAttributes[0].AttributeKey, in.LookupAttributes[0].AttributeValue
		if !validLookupKey(q.Key) || q.Value == "" {
			writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidLookupAttributesException", "Invalid lookup attribute %q=%q.", q.Key, q.Value)
			return
		}
	}
	if in.EventCategory != nil {
		if *in.EventCategory != "insight" {
			writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidEventCategoryException", "Invalid event category %q.", *in.EventCategory)
			return
		}
		q.Category = *in.EventCategory
	}
	limit := lookupMaxPage
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > lookupMaxPage {
			writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
			return
		}
		limit = *in.MaxResults
	}
	now := c.srv.cfg.Now().UTC()
	start, end := epochSeconds(in.StartTime), epochSeconds(in.EndTime)
	if in.EndTime == nil {
		end = now
	}
	if in.StartTime != nil && start.After(end) {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidTimeRangeException", "StartTime must be before EndTime.")
		return
	}
	if horizon := now.Add(-lookupHorizon); start.Before(horizon) {
		start = horizon
	}
	q.Start, q.End = start.UnixNano(), end.UnixNano()

	var after *lookupCursor
	if in.NextToken != nil {
		cur, ok := c.openToken(*in.NextToken)
		if !ok || cur.Q != q {
			writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidNextTokenException", "Invalid NextToken.")
			return
		}
		after = &cur
	}

	page, more := c.page(q, after, limit)
	out := struct {
		Events    []map[string]any
		NextToken *string `json:",omitempty"`
	}{Events: make([]map[string]any, 0, len(page))}
	for _, ev := range page {
		item := map[string]any{
			"EventId": ev.ID, "EventName": ev.Name, "EventSource": ev.Source, "ReadOnly": ev.ReadOnly,
			"EventTime": float64(ev.Time.Unix()), "CloudTrailEvent": ev.Record,
		}
		if ev.Username != "" {
			item["Username"] = ev.Username
		}
		if ev.AccessKeyID != "" {
			item["AccessKeyId"] = ev.AccessKeyID
		}
		if len(ev.Resources) > 0 {
			item["Resources"] = ev.Resources
		}
		out.Events = append(out.Events, item)
	}
	if more {
		last := page[len(page)-1]
		tok := c.sealToken(lookupCursor{Q: q, Time: last.Time.UnixNano(), ID: last.ID})
		out.NextToken = &tok
	}
	c.mu.Lock()
	st := c.statsOf(scopeKey(account, region))
	st.Pages++
	st.Events += len(page)
	c.mu.Unlock()
	awsjson.Write(w, awsjson.JSON11, http.StatusOK, out)
}

// admit takes a token from the bucket of account and region, counting the
// call either way.
func (c *CloudTrail) admit(account, region string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := scopeKey(account, region)
	st := c.statsOf(k)
	st.Calls++
	b := c.buckets[k]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(c.srv.cfg.LookupRate), c.srv.cfg.LookupBurst)
		c.buckets[k] = b
	}
	now := time.Now()
	if !b.AllowN(now, 1) {
		st.Throttled++
		return false
	}
	if st.Accepted == 0 {
		st.First = now
	}
	st.Accepted++
	st.Last = now
	return true
}

func (c *CloudTrail) statsOf(k string) *LookupStats {
	st := c.stats[k]
	if st == nil {
		st = &LookupStats{}
		c.stats[k] = st
	}
	return st
}

// page returns up to limit matching events after the cursor, newest first,
// and whether more match.
func (c *CloudTrail) page(q lookupQuery, after *lookupCursor, limit int) ([]lookupEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if q.Category == "insight" {
		return nil, false // no Insights events are faked
	}
	evs := c.events[scopeKey(q.Account, q.Region)]
	// Start at the first event not newer than EndTime, past the cursor.
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Time.UnixNano() <= q.End })
	if after != nil {
		pos := lookupEvent{Time: time.Unix(0, after.Time).UTC(), ID: after.ID}
		i = max(i, sort.Search(len(evs), func(i int) bool { return newestFirst(evs[i], pos) > 0 }))
	}
	var out []lookupEvent
	for ; i < len(evs) && evs[i].Time.UnixNano() >= q.Start; i++ {
		if !matches(evs[i], q.Key, q.Value) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, evs[i])
	}
	return out, false
}

func validLookupKey(k string) bool {
	switch k {
	case "EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId":
		return true
	}
	return false
}

func matches(ev lookupEvent, key, value string) bool {
	switch key {
	case "":
		return true
	case "EventId":
		return ev.ID == value
	case "EventName":
		return ev.Name == value
	case "ReadOnly":
		return ev.ReadOnly == value
	case "Username":
		return ev.Username == value
	case "EventSource":
		return ev.Source == value
	case "AccessKeyId":
		return ev.AccessKeyID == value
	case "ResourceType", "ResourceName":
		for _, r := range ev.Resources {
			if (key == "ResourceType" && r.ResourceType == value) || (key == "ResourceName" && r.ResourceName == value) {
				return true
			}
		}
	}
	return false
}

// sealToken makes an opaque, tamper-evident NextToken.
func (c *CloudTrail) sealToken(cur lookupCursor) string {
	payload, _ := json.Marshal(cur)
	mac := hmac.New(sha256.New, c.tokenKey)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(append(mac.Sum(nil), payload...))
}

func (c *CloudTrail) openToken(tok string) (lookupCursor, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) < sha256.Size {
		return lookupCursor{}, false
	}
	mac := hmac.New(sha256.New, c.tokenKey)
	mac.Write(raw[sha256.Size:])
	if !hmac.Equal(mac.Sum(nil), raw[:sha256.Size]) {
		return lookupCursor{}, false
	}
	var cur lookupCursor
	if err := json.Unmarshal(raw[sha256.Size:], &cur); err != nil {
		return lookupCursor{}, false
	}
	return cur, true
}
