package sinkfake

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Security Hub limits of BatchImportFindings and of ASFF.
const (
	SecurityHubMaxFindings     = 100
	SecurityHubMaxFindingBytes = 240 * 1024
	SecurityHubCallsPerSecond  = 10
	ASFFMaxTitle               = 256
	ASFFMaxDescription         = 1024
)

// ASFFRequired are the top-level attributes Security Hub requires of every
// finding (ASFF "Required top-level attributes"): AwsAccountId, CreatedAt,
// Description, GeneratorId, Id, ProductArn, Resources, SchemaVersion,
// Severity, Title, Types, UpdatedAt.
var ASFFRequired = []string{
	"AwsAccountId", "CreatedAt", "Description", "GeneratorId", "Id", "ProductArn",
	"Resources", "SchemaVersion", "Severity", "Title", "Types", "UpdatedAt",
}

// SecurityHub is a fake of Security Hub's BatchImportFindings (REST JSON,
// POST /findings/import) for one account and region: like the service, it
// accepts a finding only under the account's default custom product and
// for that account.
type SecurityHub struct {
	*httptest.Server
	Faults
	Record
	Account, Region string

	mu         sync.Mutex
	limiter    *rate.Limiter
	violations int
}

// NewSecurityHub starts the fake; it stops at cleanup.
func NewSecurityHub(t testing.TB, account, region string) *SecurityHub {
	f := &SecurityHub{Account: account, Region: region, limiter: rate.NewLimiter(SecurityHubCallsPerSecond, SecurityHubCallsPerSecond)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// RateViolations counts calls over 10 a second (answered 429).
func (f *SecurityHub) RateViolations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.violations
}

var asffType = regexp.MustCompile(`^(Software and Configuration Checks|TTPs|Effects|Unusual Behaviors|Sensitive Data Identifications)(/[^/]+){0,2}$`)

func (f *SecurityHub) serve(w http.ResponseWriter, r *http.Request) {
	f.call()
	if r.Method != http.MethodPost || r.URL.Path != "/findings/import" {
		restError(w, http.StatusNotFound, "ResourceNotFoundException", f.refuse("%s %s", r.Method, r.URL.Path))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		restError(w, http.StatusBadRequest, "InvalidInputException", f.refuse("content type %q", r.Header.Get("Content-Type")))
		return
	}
	if !signedV4(r) {
		restError(w, http.StatusForbidden, "IncompleteSignatureException", f.refuse("request not signed with SigV4"))
		return
	}
	if !f.limiter.Allow() {
		f.mu.Lock()
		f.violations++
		f.mu.Unlock()
		restError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate exceeded")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	var in struct {
		Findings []json.RawMessage `json:"Findings"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		restError(w, http.StatusBadRequest, "InvalidInputException", f.refuse("decode: %v", err))
		return
	}
	if n := len(in.Findings); n < 1 || n > SecurityHubMaxFindings {
		restError(w, http.StatusBadRequest, "InvalidInputException", f.refuse("Findings must hold 1 to 100 findings, got %d", n))
		return
	}
	f.wait(r.Context())
	if ok, after := f.takeThrottle(); ok {
		setRetryAfter(w, after)
		restError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate exceeded")
		return
	}
	type failed struct {
		ID           string `json:"Id"`
		ErrorCode    string `json:"ErrorCode"`
		ErrorMessage string `json:"ErrorMessage"`
	}
	var fails []failed
	ok := 0
	for _, raw := range in.Findings {
		id := FindingID(raw)
		code, msg := f.check(raw)
		if code == "" {
			fail, reject := f.itemFault(id)
			switch {
			case reject:
				code, msg = "InvalidInput", "rejected by fault injection"
			case fail:
				code, msg = "InternalFailure", "transient failure"
			}
		}
		if code != "" {
			fails = append(fails, failed{ID: id, ErrorCode: code, ErrorMessage: msg})
			continue
		}
		f.add(Received{ID: id, Body: raw})
		ok++
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"FailedCount": len(fails), "SuccessCount": ok, "FailedFindings": fails})
}

// check validates one ASFF finding as Security Hub does; it answers a
// per-finding error code, or "".
func (f *SecurityHub) check(raw json.RawMessage) (code, msg string) {
	if len(raw) > SecurityHubMaxFindingBytes {
		f.refuse("finding of %d bytes", len(raw))
		return "InvalidInput", fmt.Sprintf("Finding size %d exceeds the limit of 240 KB", len(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "InvalidInput", "finding is not an object"
	}
	for _, k := range ASFFRequired {
		if v, ok := m[k]; !ok || string(v) == "null" || string(v) == `""` || string(v) == "[]" {
			f.refuse("finding lacks %s", k)
			return "InvalidInput", "Finding does not have required attribute " + k
		}
	}
	type alias struct {
		SchemaVersion string   `json:"SchemaVersion"`
		ID            string   `json:"Id"`
		ProductArn    string   `json:"ProductArn"`
		AwsAccountID  string   `json:"AwsAccountId"`
		Title         string   `json:"Title"`
		Description   string   `json:"Description"`
		CreatedAt     string   `json:"CreatedAt"`
		UpdatedAt     string   `json:"UpdatedAt"`
		Types         []string `json:"Types"`
		Severity      struct {
			Label string `json:"Label"`
		} `json:"Severity"`
		Resources []struct {
			Type string `json:"Type"`
			ID   string `json:"Id"`
		} `json:"Resources"`
	}
	var a alias
	if err := json.Unmarshal(raw, &a); err != nil {
		f.refuse("finding: %v", err)
		return "InvalidInput", err.Error()
	}
	switch {
	case a.SchemaVersion != "2018-10-08":
		return "InvalidInput", f.refuse("SchemaVersion %q", a.SchemaVersion)
	case utf8.RuneCountInString(a.Title) > ASFFMaxTitle:
		return "InvalidInput", f.refuse("Title longer than %d characters", ASFFMaxTitle)
	case utf8.RuneCountInString(a.Description) > ASFFMaxDescription:
		return "InvalidInput", f.refuse("Description longer than %d characters", ASFFMaxDescription)
	case !validTime(a.CreatedAt) || !validTime(a.UpdatedAt):
		return "InvalidInput", f.refuse("CreatedAt %q / UpdatedAt %q not RFC 3339", a.CreatedAt, a.UpdatedAt)
	case !map[string]bool{"INFORMATIONAL": true, "LOW": true, "MEDIUM": true, "HIGH": true, "CRITICAL": true}[a.Severity.Label]:
		return "InvalidInput", f.refuse("Severity.Label %q", a.Severity.Label)
	}
	for _, t := range a.Types {
		if !asffType.MatchString(t) {
			return "InvalidInput", f.refuse("Types entry %q is not namespace/category/classifier", t)
		}
	}
	for _, r := range a.Resources {
		if r.Type == "" || r.ID == "" {
			return "InvalidInput", f.refuse("resource without Type or Id")
		}
	}
	want := fmt.Sprintf("arn:aws:securityhub:%s:%s:product/%s/default", f.Region, f.Account, f.Account)
	if a.ProductArn != want || a.AwsAccountID != f.Account {
		return "AccessDeniedException", "account " + f.Account + " may not import findings for product " + a.ProductArn + " and account " + a.AwsAccountID
	}
	return "", ""
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// restError answers in the REST JSON protocol's error shape.
func restError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": msg})
}
