// Package cloudtrailfake serves protocol-level fakes of the AWS APIs the backfill
// calls (CloudTrail LookupEvents, STS AssumeRole, Organizations
// ListAccounts, Account ListRegions) for tests and benchmarks that drive the
// real SDK clients. Each fake speaks the service's wire protocol (AWS JSON
// 1.1, the query protocol, REST-JSON) and models the limits the backfill
// must respect: LookupEvents' 2 calls a second per account and region, its
// 50 events a page, one lookup attribute, newest first, an opaque NextToken
// and the 90-day horizon.
//
// One Server routes a request to a fake by the service named in its SigV4
// credential scope, and tells accounts apart by access key: keys the STS
// fake issued belong to the account whose role was assumed, any other key
// to Config.DefaultAccount. Point the SDK at it with the standard
// AWS_ENDPOINT_URL_<SERVICE> variables (Server.Env). Production code never
// imports this package.
package cloudtrailfake

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/sessionwatch/sessionwatch/internal/awsjson"
)

// DefaultAccount owns requests signed with keys the STS fake did not issue.
const DefaultAccount = "111122223333"

// Config sets up a Server. The zero value works.
type Config struct {
	// Now is the fakes' clock (LookupEvents' 90-day horizon, credential
	// expiry); default time.Now.
	Now func() time.Time
	// DefaultAccount owns requests signed with any key the STS fake did
	// not issue; default DefaultAccount.
	DefaultAccount string
	// LookupRate and LookupBurst size the LookupEvents token bucket of each
	// account and region: default 2 calls a second, burst 2.
	LookupRate  float64
	LookupBurst int
	// Latency delays every response, to model a remote endpoint.
	Latency time.Duration
}

// Server is the set of fakes behind one HTTP endpoint.
type Server struct {
	cfg Config
	// CloudTrail, STS, Organizations and Account are the fakes; configure
	// them (add events, roles, accounts, regions) before or during a run.
	CloudTrail    *CloudTrail
	STS           *STS
	Organizations *Organizations
	Account       *Account

	mu   sync.Mutex
	keys map[string]string // access key id → account

	http *httptest.Server
}

// New starts a Server on a loopback port. Close it when done.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DefaultAccount == "" {
		cfg.DefaultAccount = DefaultAccount
	}
	if cfg.LookupRate <= 0 {
		cfg.LookupRate = 2
	}
	if cfg.LookupBurst <= 0 {
		cfg.LookupBurst = 2
	}
	s := &Server{cfg: cfg, keys: map[string]string{}}
	s.CloudTrail = newCloudTrail(s)
	s.STS = newSTS(s)
	s.Organizations = &Organizations{}
	s.Account = &Account{}
	s.http = httptest.NewServer(s)
	return s
}

// URL is the endpoint of every fake.
func (s *Server) URL() string { return s.http.URL }

// Close stops the server.
func (s *Server) Close() { s.http.Close() }

// Env returns the standard SDK variables that point every faked service at
// the server: AWS_ENDPOINT_URL_CLOUDTRAIL, _STS, _ORGANIZATIONS, _ACCOUNT.
func (s *Server) Env() map[string]string {
	env := map[string]string{}
	for _, svc := range []string{"CLOUDTRAIL", "STS", "ORGANIZATIONS", "ACCOUNT"} {
		env["AWS_ENDPOINT_URL_"+svc] = s.URL()
	}
	return env
}

// ServeHTTP routes a request by the service of its SigV4 credential scope.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Latency > 0 {
		time.Sleep(s.cfg.Latency)
	}
	scope, ok := parseCredentialScope(r.Header.Get("Authorization"))
	if !ok {
		http.Error(w, "missing or malformed SigV4 Authorization header", http.StatusForbidden)
		return
	}
	account := s.accountOf(scope.accessKey)
	switch scope.service {
	case "cloudtrail":
		s.CloudTrail.serve(w, r, account, scope.region)
	case "sts":
		s.STS.serve(w, r, account)
	case "organizations":
		s.Organizations.serve(w, r)
	case "account":
		s.Account.serve(w, r, account)
	default:
		http.Error(w, "cloudtrailfake: service "+scope.service+" is not faked", http.StatusNotImplemented)
	}
}

func (s *Server) accountOf(accessKey string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.keys[accessKey]; ok {
		return a
	}
	return s.cfg.DefaultAccount
}

func (s *Server) issueKey(account string) (accessKey, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	accessKey = "ASIA" + strings.ToUpper(randomHex(8))
	s.keys[accessKey] = account
	return accessKey, randomHex(20)
}

type credentialScope struct{ accessKey, region, service string }

// parseCredentialScope reads "AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, …".
func parseCredentialScope(auth string) (credentialScope, bool) {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return credentialScope{}, false
	}
	if i := strings.IndexByte(rest, ','); i >= 0 {
		rest = rest[:i]
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return credentialScope{}, false
	}
	return credentialScope{accessKey: parts[0], region: parts[2], service: parts[3]}, true
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// writeJSONError answers an AWS JSON protocol error as the services do:
// status 400 (or as given) and a body with __type and message.
func writeJSONError(w http.ResponseWriter, contentType string, status int, code, format string, args ...any) {
	awsjson.WriteError(w, contentType, status, code, fmt.Sprintf(format, args...))
}

// epochSeconds reads an AWS JSON timestamp (seconds since the epoch, with
// an optional fraction).
func epochSeconds(v *float64) time.Time {
	if v == nil {
		return time.Time{}
	}
	sec := int64(*v)
	return time.Unix(sec, int64((*v-float64(sec))*1e9)).UTC()
}
