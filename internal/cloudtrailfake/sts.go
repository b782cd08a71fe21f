package cloudtrailfake

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// STS fakes AssumeRole over the query protocol. A role may be assumed when
// it was allowed with AllowRole; the credentials it returns sign requests as
// the role's account.
type STS struct {
	srv *Server

	mu      sync.Mutex
	allowed map[string]bool // role ARN suffix "ACCOUNT:role/NAME"
	calls   map[string]int  // by target account
}

func newSTS(s *Server) *STS {
	return &STS{srv: s, allowed: map[string]bool{}, calls: map[string]int{}}
}

// AllowRole lets any caller assume role NAME in account.
func (s *STS) AllowRole(account, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[account+":role/"+name] = true
}

// Calls returns the AssumeRole calls made into account.
func (s *STS) Calls(account string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[account]
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"AssumeRoleResponse"`
	Result  struct {
		Credentials     stsCredentials `xml:"Credentials"`
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			ARN           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type queryErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func (s *STS) serve(w http.ResponseWriter, r *http.Request, _ string) {
	if err := r.ParseForm(); err != nil {
		writeQueryError(w, http.StatusBadRequest, "MalformedInput", err.Error())
		return
	}
	if action := r.PostForm.Get("Action"); action != "AssumeRole" {
		writeQueryError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("action %q is not faked", action))
		return
	}
	roleARN, session := r.PostForm.Get("RoleArn"), r.PostForm.Get("RoleSessionName")
	if roleARN == "" || session == "" {
		writeQueryError(w, http.StatusBadRequest, "ValidationError", "RoleArn and RoleSessionName are required")
		return
	}
	// arn:PARTITION:iam::ACCOUNT:role/NAME
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		writeQueryError(w, http.StatusBadRequest, "ValidationError", "invalid RoleArn "+roleARN)
		return
	}
	account, name := parts[4], strings.TrimPrefix(parts[5], "role/")
	s.mu.Lock()
	s.calls[account]++
	ok := s.allowed[account+":role/"+name]
	s.mu.Unlock()
	if !ok {
		writeQueryError(w, http.StatusForbidden, "AccessDenied",
			fmt.Sprintf("User is not authorized to perform: sts:AssumeRole on resource: %s", roleARN))
		return
	}
	key, secret := s.srv.issueKey(account)
	var out assumeRoleResponse
	out.Result.Credentials = stsCredentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: randomHex(32),
		Expiration: s.srv.cfg.Now().UTC().Add(time.Hour).Format(time.RFC3339)}
	out.Result.AssumedRoleUser.AssumedRoleID = "AROA" + strings.ToUpper(randomHex(8)) + ":" + session
	out.Result.AssumedRoleUser.ARN = fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", parts[1], account, name, session)
	out.RequestID = randomHex(16)
	writeXML(w, http.StatusOK, out)
}

func writeQueryError(w http.ResponseWriter, status int, code, msg string) {
	var e queryErrorResponse
	e.Error.Type, e.Error.Code, e.Error.Message, e.RequestID = "Sender", code, msg, randomHex(16)
	writeXML(w, status, e)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(v)
}
