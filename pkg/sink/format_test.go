package sink

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sessionwatch/sessionwatch/internal/sinkfake"
)

func TestFormatGoldens(t *testing.T) {
	rc := RenderConfig{ProductVersion: "1.0.0", AccountID: "444455556666", Region: "eu-west-1"}
	for _, format := range Formats() {
		t.Run(string(format), func(t *testing.T) {
			f := fixedFinding()
			b, err := Render(&f, format, rc)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", "finding."+string(format)+".json")
			if *update && format != FormatNative { // native's golden belongs to TestNativeJSONGolden
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("%s rendering changed (run with -update if intended):\n%s", format, pretty.String())
			}
		})
	}
}

// lookup walks a dotted path through decoded JSON.
func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	default:
		return true
	}
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ocsfRequired are the attributes OCSF requires of a Detection Finding
// (class_uid 2004) with the cloud profile, and of the objects it uses, per
// the OCSF 1.5.0 schema (schema.ocsf.io/1.5.0/classes/detection_finding;
// ocsf-schema events/base_event.json, events/findings/finding.json,
// objects/finding_info.json, objects/metadata.json, objects/product.json,
// objects/api.json, objects/cloud.json, profiles/cloud.json):
//   - base event: activity_id, category_uid, class_uid, metadata,
//     severity_id, time, type_uid;
//   - finding: finding_info;
//   - cloud profile: cloud; cloud: provider;
//   - metadata: product, version; finding_info: uid, title (required up to
//     1.5, recommended since); api: operation.
var ocsfRequired = []string{
	"activity_id", "category_uid", "class_uid", "metadata", "severity_id", "time", "type_uid",
	"finding_info", "cloud", "cloud.provider",
	"metadata.product", "metadata.version", "finding_info.uid", "finding_info.title", "api.operation",
}

// ocsfRecommended are the attributes issue 4 maps beyond the required ones.
var ocsfRecommended = []string{
	"activity_name", "category_name", "class_name", "type_name", "severity", "status_id", "message",
	"metadata.product.name", "metadata.product.vendor_name", "metadata.product.version",
	"finding_info.desc", "actor.user.uid", "api.service.name", "api.request.uid", "src_endpoint.ip",
	"cloud.region", "cloud.account.uid", "resources",
}

func TestOCSFDetectionFinding(t *testing.T) {
	f := fixedFinding()
	b, err := Render(&f, FormatOCSF, RenderConfig{ProductVersion: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, b)
	for _, path := range append(ocsfRequired, ocsfRecommended...) {
		if v, ok := lookup(m, path); !ok || !present(v) {
			t.Errorf("OCSF attribute %s missing", path)
		}
	}
	num := func(path string) float64 { v, _ := lookup(m, path); n, _ := v.(float64); return n }
	str := func(path string) string { v, _ := lookup(m, path); s, _ := v.(string); return s }
	if num("class_uid") != 2004 || num("category_uid") != 2 || num("activity_id") != 1 {
		t.Errorf("class %v category %v activity %v", num("class_uid"), num("category_uid"), num("activity_id"))
	}
	if num("type_uid") != num("class_uid")*100+num("activity_id") {
		t.Errorf("type_uid %v is not class_uid*100+activity_id", num("type_uid"))
	}
	if num("severity_id") != 5 || str("severity") != "Critical" { // critical → 5 Critical
		t.Errorf("severity %v %q", num("severity_id"), str("severity"))
	}
	if int64(num("time")) != f.DetectedAt.UnixMilli() {
		t.Errorf("time %v, want epoch milliseconds of detected_at", num("time"))
	}
	if str("finding_info.uid") != f.FindingID || str("metadata.version") != OCSFVersion || str("metadata.product.version") != "1.2.3" {
		t.Errorf("uid %q version %q product %q", str("finding_info.uid"), str("metadata.version"), str("metadata.product.version"))
	}
	if str("cloud.provider") != "AWS" || str("api.operation") != "AssumeRole" || str("src_endpoint.ip") != "198.51.100.7" {
		t.Errorf("cloud %q api %q ip %q", str("cloud.provider"), str("api.operation"), str("src_endpoint.ip"))
	}

	// Each severity maps into OCSF's enum; a source that is not an IP goes
	// to src_endpoint.name, never to .ip.
	for sev, id := range map[string]float64{"low": 2, "medium": 3, "high": 4, "critical": 5} {
		g := fixedFinding()
		g.Severity = sev
		g.Event.SourceIP = "lambda.amazonaws.com"
		b, _ := Render(&g, FormatOCSF, RenderConfig{})
		m := decode(t, b)
		if v, _ := lookup(m, "severity_id"); v != id {
			t.Errorf("severity %s → %v, want %v", sev, v, id)
		}
		if _, ok := lookup(m, "src_endpoint.ip"); ok {
			t.Errorf("service name rendered as an IP")
		}
	}
}

func TestASFFRequiredAndLimits(t *testing.T) {
	f := fixedFinding()
	rc := RenderConfig{AccountID: "444455556666", Region: "eu-west-1"}
	b, err := Render(&f, FormatASFF, rc)
	if err != nil {
		t.Fatal(err)
	}
	m := decode(t, b)
	// sinkfake.ASFFRequired lists ASFF's required top-level attributes
	// (Security Hub user guide, "Required top-level ASFF attributes").
	for _, k := range sinkfake.ASFFRequired {
		if v, ok := m[k]; !ok || !present(v) {
			t.Errorf("ASFF attribute %s missing", k)
		}
	}
	for _, path := range []string{"Severity.Label", "FindingProviderFields.Severity.Label", "FindingProviderFields.Types"} {
		if v, ok := lookup(m, path); !ok || !present(v) {
			t.Errorf("ASFF attribute %s missing", path)
		}
	}
	want := map[string]string{
		"SchemaVersion": "2018-10-08",
		"Id":            f.FindingID,
		"ProductArn":    "arn:aws:securityhub:eu-west-1:444455556666:product/444455556666/default",
		"AwsAccountId":  "444455556666",
		"GeneratorId":   "sessionwatch/revoked",
		"CreatedAt":     "2026-11-20T10:00:02.000Z",
		"UpdatedAt":     "2026-11-20T10:00:02.000Z",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %s", k, m[k], v)
		}
	}
	if v, _ := lookup(m, "Severity.Label"); v != "CRITICAL" {
		t.Errorf("Severity.Label %v", v)
	}
	res := m["Resources"].([]any)[0].(map[string]any)
	if res["Type"] != "AwsIamRole" || res["Id"] != f.Target.RoleARN {
		t.Errorf("resource %v", res)
	}
	if v, _ := lookup(res, "Details.AwsIamRole.RoleName"); v != "Admin" {
		t.Errorf("AwsIamRole details %v", res["Details"])
	}

	// Limits: Title ≤ 256 and Description ≤ 1024 characters, a finding
	// ≤ 240 KB, whatever the reason's length.
	huge := fixedFinding()
	huge.Reason = strings.Repeat("ü", 300_000)
	huge.Target.RoleARN = "arn:aws:iam::111122223333:role/" + strings.Repeat("r", 400)
	b, err = Render(&huge, FormatASFF, rc)
	if err != nil {
		t.Fatal(err)
	}
	m = decode(t, b)
	if n := utf8.RuneCountInString(m["Title"].(string)); n > asffMaxTitle {
		t.Errorf("Title of %d characters", n)
	}
	if n := utf8.RuneCountInString(m["Description"].(string)); n > asffMaxDescription {
		t.Errorf("Description of %d characters", n)
	}
	if len(b) > ASFFMaxFindingBytes {
		t.Errorf("finding of %d bytes, limit %d", len(b), ASFFMaxFindingBytes)
	}

	// The SDK conversion keeps every required field.
	var a asffFinding
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	s := a.sdk()
	if *s.Id != huge.FindingID || *s.SchemaVersion != ASFFSchemaVersion || s.Severity.Label != "CRITICAL" ||
		len(s.Resources) != 1 || s.Resources[0].Details.AwsIamRole == nil || len(s.Types) == 0 || s.FindingProviderFields == nil {
		t.Errorf("SDK finding lost fields: %+v", s)
	}
}

func TestASFFWithoutRoleNamesTheAccount(t *testing.T) {
	f := fixedFinding()
	f.Target.RoleARN = ""
	b, _ := Render(&f, FormatASFF, RenderConfig{})
	m := decode(t, b)
	res := m["Resources"].([]any)[0].(map[string]any)
	if res["Type"] != "AwsAccount" || res["Id"] != "AWS::::Account:111122223333" {
		t.Errorf("resource %v", res)
	}
	if m["ProductArn"] != "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default" {
		t.Errorf("default account and region come from the event: %v", m["ProductArn"])
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatNative, "json": FormatNative, "OCSF": FormatOCSF, "asff": FormatASFF, "native": FormatNative} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("cef"); err == nil {
		t.Error("cef accepted")
	}
}
