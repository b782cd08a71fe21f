package cloudtrailfake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/sessionwatch/sessionwatch/internal/awsjson"
)

// Organizations fakes ListAccounts (AWS JSON 1.1), paginated.
type Organizations struct {
	mu       sync.Mutex
	accounts []orgAccount
}

type orgAccount struct{ ID, Status string }

// AddAccount adds a member account with a state (ACTIVE, SUSPENDED,
// PENDING_CLOSURE).
func (o *Organizations) AddAccount(id, status string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.accounts = append(o.accounts, orgAccount{ID: id, Status: status})
}

const orgsTarget = "AWSOrganizationsV20161128.ListAccounts"

func (o *Organizations) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != orgsTarget {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "UnknownOperationException", "operation %q is not faked", r.Header.Get("X-Amz-Target"))
		return
	}
	var in struct {
		MaxResults *int
		NextToken  *string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "SerializationException", "decode body: %v", err)
		return
	}
	limit := 20
	if in.MaxResults != nil {
		limit = *in.MaxResults
	}
	start := 0
	if in.NextToken != nil {
		n, err := strconv.Atoi(*in.NextToken)
		if err != nil {
			writeJSONError(w, awsjson.JSON11, http.StatusBadRequest, "InvalidInputException", "invalid NextToken")
			return
		}
		start = n
	}
	o.mu.Lock()
	all := o.accounts
	o.mu.Unlock()
	type account struct{ Id, Arn, Name, Email, State string }
	out := struct {
		Accounts  []account
		NextToken *string `json:",omitempty"`
	}{Accounts: []account{}}
	for i := start; i < len(all) && i < start+limit; i++ {
		a := all[i]
		out.Accounts = append(out.Accounts, account{Id: a.ID, Arn: "arn:aws:organizations::000000000000:account/o-fake/" + a.ID,
			Name: "account-" + a.ID, Email: a.ID + "@example.com", State: a.Status})
	}
	if start+limit < len(all) {
		tok := strconv.Itoa(start + limit)
		out.NextToken = &tok
	}
	awsjson.Write(w, awsjson.JSON11, http.StatusOK, out)
}

// Account fakes Account ListRegions (REST-JSON): the regions of each account
// and their opt-in status.
type Account struct {
	mu      sync.Mutex
	regions map[string][][2]string // account → (region, status)
}

// SetRegions sets an account's regions: name → RegionOptStatus (ENABLED,
// ENABLED_BY_DEFAULT, DISABLED, …), in the order given as pairs.
func (a *Account) SetRegions(account string, pairs ...[2]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.regions == nil {
		a.regions = map[string][][2]string{}
	}
	a.regions[account] = pairs
}

func (a *Account) serve(w http.ResponseWriter, r *http.Request, account string) {
	const ct = "application/json"
	if r.URL.Path != "/listRegions" {
		writeJSONError(w, ct, http.StatusNotFound, "UnknownOperationException", "path %q is not faked", r.URL.Path)
		return
	}
	var in struct {
		RegionOptStatusContains []string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSONError(w, ct, http.StatusBadRequest, "ValidationException", "decode body: %v", err)
		return
	}
	a.mu.Lock()
	pairs := a.regions[account]
	a.mu.Unlock()
	type region struct{ RegionName, RegionOptStatus string }
	out := struct{ Regions []region }{Regions: []region{}}
	for _, p := range pairs {
		keep := len(in.RegionOptStatusContains) == 0
		for _, s := range in.RegionOptStatusContains {
			keep = keep || s == p[1]
		}
		if keep {
			out.Regions = append(out.Regions, region{RegionName: p[0], RegionOptStatus: p[1]})
		}
	}
	awsjson.Write(w, ct, http.StatusOK, out)
}
