package cloudtrail

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const publicDir = "../../testdata/cloudtrail-public"

// publicRecords reads the public CloudTrail STS records, keyed by eventID.
func publicRecords(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(publicDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var id struct {
			EventID string `json:"eventID"`
		}
		line := append([]byte(nil), sc.Bytes()...)
		if err := json.Unmarshal(line, &id); err != nil {
			t.Fatal(err)
		}
		out[id.EventID] = line
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPublicRecords decodes every public AssumeRole* record: each one either
// decodes in scope or is out of scope with a reason that says why.
func TestPublicRecords(t *testing.T) {
	recs := publicRecords(t, "assume_role_records.jsonl")
	if len(recs) != 29 {
		t.Fatalf("got %d records, want 29 (see SOURCES.md)", len(recs))
	}
	d := NewDecoder(Config{})
	inScope, outOfScope := 0, 0
	for id, rec := range recs {
		msg, err := d.DecodeMessage(rec)
		switch {
		case err == nil:
			inScope++
			if msg.Shape != ShapeRecord || msg.Event == nil || msg.Event.ID != id {
				t.Errorf("%s: got shape %s event %+v", id, msg.Shape, msg.Event)
			}
			if msg.Event.Time.IsZero() {
				t.Errorf("%s: zero time", id)
			}
			if msg.Event.TargetRoleARN == "" {
				t.Errorf("%s: no target role", id)
			}
		case errors.Is(err, ErrOutOfScope):
			outOfScope++
			var se *ScopeError
			if !errors.As(err, &se) || se.Reason == "" {
				t.Errorf("%s: out of scope without a reason: %v", id, err)
			}
		default:
			t.Errorf("%s: unexpected error %v", id, err)
		}
	}
	// 12 are AWS services assuming their own roles (grycap EMR and Lambda,
	// trailscraper, panther 1f3d7d49) and one is a relabelled console
	// sign-in; the other 16 are classified.
	if inScope != 17 || outOfScope != 12 {
		t.Errorf("in scope %d, out of scope %d; want 17 and 12", inScope, outOfScope)
	}
}

func TestPublicRecordFields(t *testing.T) {
	recs := publicRecords(t, "assume_role_records.jsonl")
	tests := []struct {
		id         string
		name       string
		si         string
		origin     Origin
		target     string
		issuer     string
		assumed    string
		errorCode  string
		account    string
		callerType string
		scopeErr   string // non-empty: the ScopeError reason must mention it
	}{
		{
			id: "1917948f-3042-46ec-98e2-62865EXAMPLE", name: "role chaining",
			si: "JohnDoe", origin: OriginResponse,
			target:     "arn:aws:iam::111111111111:role/JohnRole2",
			issuer:     "arn:aws:iam::111111111111:role/JohnRole1",
			assumed:    "arn:aws:sts::111111111111:assumed-role/test-role/Role2WithTags",
			account:    "111111111111",
			callerType: "AssumedRole",
		},
		{
			id: "dEXAMPLE-ac7f-466c-a608-4ac8dEXAMPLE", name: "cross-account",
			si: "JohnDoe", origin: OriginResponse,
			target:     "arn:aws:iam::111122223333:role/EC2-dev",
			callerType: "IAMUser",
		},
		{
			id: "dEXAMPLE-265a-41e0-9352-4401bEXAMPLE", name: "SAML",
			target:     "arn:aws:iam::444455556666:role/SAMLTestRoleShibboleth",
			callerType: "SAMLUser",
		},
		{
			id: "bEXAMPLE-0b30-4246-b28c-e3da3EXAMPLE", name: "web identity",
			target:     "arn:aws:iam::444455556666:role/FederatedWebIdentityRole",
			callerType: "WebIdentityUser",
		},
		{
			id: "46558847-8b84-43de-8c96-302aa4744763", name: "denied, null requestParameters",
			target:     "arn:aws:iam::457448411975:role/stratus-red-team-ec2-get-password-data-role",
			errorCode:  "AccessDenied",
			account:    "457448411975",
			callerType: "IAMUser",
		},
		{
			id: "364ad368-42bf-4e05-a500-971ddfe8ebff", name: "console sign-in labelled AssumeRole",
			scopeErr: "eventSource",
		},
		{
			id: "724530b6-fa18-4022-89d8-15801cd89aaf", name: "AWS service",
			scopeErr: "AWS service",
		},
		{
			id: "044e210e-6c5e-3f3e-8f04-2311a826f287", name: "exporter-normalised (string resources, space time)",
			target:     "arn:aws:iam::111122223333:role/SampleRole",
			assumed:    "arn:aws:sts::111122223333:assumed-role/SampleRole/SampleSession",
			callerType: "AWSAccount",
		},
	}
	d := NewDecoder(Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, ok := recs[tt.id]
			if !ok {
				t.Fatalf("record %s missing", tt.id)
			}
			msg, err := d.DecodeMessage(rec)
			if tt.scopeErr != "" {
				var se *ScopeError
				if !errors.As(err, &se) {
					t.Fatalf("want ScopeError, got %v", err)
				}
				if !strings.Contains(se.Error(), tt.scopeErr) {
					t.Errorf("reason %q does not mention %q", se.Error(), tt.scopeErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev := msg.Event
			if ev.SourceIdentity != tt.si || ev.SourceIdentityOrigin != tt.origin {
				t.Errorf("SourceIdentity %q from %q, want %q from %q", ev.SourceIdentity, ev.SourceIdentityOrigin, tt.si, tt.origin)
			}
			if ev.TargetRoleARN != tt.target {
				t.Errorf("target %q, want %q", ev.TargetRoleARN, tt.target)
			}
			if tt.issuer != "" && ev.Caller.SessionIssuerARN != tt.issuer {
				t.Errorf("issuer %q, want %q", ev.Caller.SessionIssuerARN, tt.issuer)
			}
			if ev.TargetRoleARN == ev.Caller.SessionIssuerARN {
				t.Errorf("target role taken from the caller's session issuer")
			}
			if tt.assumed != "" && ev.AssumedRoleARN != tt.assumed {
				t.Errorf("assumed %q, want %q", ev.AssumedRoleARN, tt.assumed)
			}
			if ev.ErrorCode != tt.errorCode || ev.Failed() != (tt.errorCode != "") {
				t.Errorf("errorCode %q, want %q", ev.ErrorCode, tt.errorCode)
			}
			if tt.account != "" && ev.Account != tt.account {
				t.Errorf("account %q, want %q", ev.Account, tt.account)
			}
			if ev.Caller.Type != tt.callerType {
				t.Errorf("caller type %q, want %q", ev.Caller.Type, tt.callerType)
			}
		})
	}
}

func TestPublicOtherSTSRecordsOutOfScope(t *testing.T) {
	d := NewDecoder(Config{})
	for id, rec := range publicRecords(t, "other_sts_records.jsonl") {
		_, err := d.DecodeMessage(rec)
		if !errors.Is(err, ErrOutOfScope) {
			t.Errorf("%s: got %v, want out of scope", id, err)
		}
	}
}
