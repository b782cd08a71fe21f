package tfcontract

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/streamer"
)

// pipelinePattern is the pattern of the pipeline rule.
type pipelinePattern struct {
	Source     []string `json:"source"`
	DetailType []string `json:"detail-type"`
	Detail     struct {
		EventSource []string `json:"eventSource"`
		EventName   []string `json:"eventName"`
		Or          []struct {
			RequestParameters map[string][]string `json:"requestParameters"`
		} `json:"$or"`
	} `json:"detail"`
}

// Stand-ins for the queues' URLs, which only a plan knows.
const (
	queueURLStandIn = "https://sqs.test/events"
	dlqURLStandIn   = "https://sqs.test/dlq"
)

// checkPipelineRule: the module's second rule matches exactly the pipeline
// calls the decoder classifies (their sources and names, pkg/cloudtrail),
// only on the module's own rules and queues, sends them to the event queue,
// and may send to it (the queue policy admits it); the decoder, configured
// with the pipeline names as the streamer is by default, accepts an event
// built from the pattern.
func checkPipelineRule(m *tfDir) error {
	r, err := m.block("resource", "aws_cloudwatch_event_rule", "pipeline")
	if err != nil {
		return err
	}
	var errs []error
	if state, err := literalString(r, "state"); state != "ENABLED" && state != "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS" {
		errs = append(errs, fmt.Errorf("pipeline rule: state %q (%v), want ENABLED", state, err))
	}
	names, err := m.localValue("pipeline_rule_names")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	roots := map[string]cty.Value{
		"local": cty.ObjectVal(map[string]cty.Value{"pipeline_rule_names": names}),
		"aws_sqs_queue": cty.ObjectVal(map[string]cty.Value{
			"events": cty.ObjectVal(map[string]cty.Value{"url": cty.StringVal(queueURLStandIn)}),
			"dlq":    cty.ObjectVal(map[string]cty.Value{"url": cty.StringVal(dlqURLStandIn)}),
		}),
	}
	a, err := attr(r, "event_pattern")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	v, err := m.evalWith(a.Expr, nil, roots)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var p pipelinePattern
	if err := decodeJSONString(v, &p); err != nil {
		return errors.Join(append(errs, err)...)
	}
	var wantSources, wantEventSources []string
	for _, n := range cloudtrail.PipelineEventNames() {
		src, env := cloudtrail.EventsEventSource, cloudtrail.EventsEnvelopeSource
		if n == "SetQueueAttributes" {
			src, env = cloudtrail.SQSEventSource, cloudtrail.SQSEnvelopeSource
		}
		if !slices.Contains(wantSources, env) {
			wantSources, wantEventSources = append(wantSources, env), append(wantEventSources, src)
		}
	}
	for _, f := range []struct {
		field     string
		got, want []string
	}{
		{"source", sorted(p.Source), sorted(wantSources)},
		{"detail-type", p.DetailType, []string{cloudtrail.EnvelopeDetailType}},
		{"detail.eventSource", sorted(p.Detail.EventSource), sorted(wantEventSources)},
		{"detail.eventName", sorted(p.Detail.EventName), sorted(cloudtrail.PipelineEventNames())},
	} {
		if !slices.Equal(f.got, f.want) {
			errs = append(errs, fmt.Errorf("pipeline rule: %s %q, want %q (pkg/cloudtrail)", f.field, f.got, f.want))
		}
	}

	// Scoped to the module's own rules and its forwarders' (by name, and by
	// rule for the target calls) and queues.
	ruleNames, err := m.ruleNames()
	if err != nil {
		errs = append(errs, err)
	}
	if fwd, err := parseDir(filepath.Join(m.dir, "modules", "forwarder")); err != nil {
		errs = append(errs, err)
	} else if names, err := fwd.ruleNames(); err != nil {
		errs = append(errs, err)
	} else {
		ruleNames = append(ruleNames, names...)
	}
	scope := map[string][]string{}
	for _, o := range p.Detail.Or {
		for k, vs := range o.RequestParameters {
			scope[k] = append(scope[k], vs...)
		}
	}
	for _, f := range []struct {
		param string
		want  []string
	}{
		{"name", ruleNames}, {"rule", ruleNames}, {"queueUrl", []string{queueURLStandIn, dlqURLStandIn}},
	} {
		if !slices.Equal(sorted(scope[f.param]), sorted(f.want)) {
			errs = append(errs, fmt.Errorf("pipeline rule: requestParameters.%s %q, want the module's own %q", f.param, scope[f.param], f.want))
		}
	}

	// Its target is the event queue, and the queue admits it.
	target, err := m.block("resource", "aws_cloudwatch_event_target", "pipeline")
	if err != nil {
		errs = append(errs, err)
	} else if a, err := attr(target, "arn"); err != nil || traversal(a.Expr) != "aws_sqs_queue.events.arn" {
		errs = append(errs, fmt.Errorf("pipeline rule's target is not aws_sqs_queue.events (%v)", err))
	}
	if arns, err := m.localText("rule_arns"); err != nil || !strings.Contains(arns, "aws_cloudwatch_event_rule.pipeline") {
		errs = append(errs, fmt.Errorf("local.rule_arns (the rules the queue policy admits) lacks the pipeline rule: %q (%v)", arns, err))
	}
	if doc, err := m.block("data", "aws_iam_policy_document", "queue"); err != nil || !strings.Contains(m.text(doc.Body), "local.rule_arns") {
		errs = append(errs, fmt.Errorf("the queue policy does not admit local.rule_arns (%v)", err))
	}

	// The decoder accepts what the rule forwards.
	dec := cloudtrail.NewDecoder(cloudtrail.Config{EventNames: append(cloudtrail.DefaultEventNames(), cloudtrail.PipelineEventNames()...)})
	for _, n := range p.Detail.EventName {
		src, env := cloudtrail.EventsEventSource, cloudtrail.EventsEnvelopeSource
		params := `{"name":"rule"}`
		if n == "SetQueueAttributes" {
			src, env = cloudtrail.SQSEventSource, cloudtrail.SQSEnvelopeSource
			params = `{"queueUrl":"` + queueURLStandIn + `","attributes":{"Policy":"{}"}}`
		}
		body := fmt.Sprintf(`{"version":"0","id":"1","detail-type":%q,"source":%q,"account":"111122223333","time":"2024-05-01T12:00:00Z","region":"eu-west-1","resources":[],`+
			`"detail":{"eventVersion":"1.08","eventID":"e1","eventTime":"2024-05-01T12:00:00Z","eventSource":%q,"eventName":%q,"awsRegion":"eu-west-1","recipientAccountId":"111122223333",`+
			`"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/x","accountId":"111122223333"},"requestParameters":%s}}`,
			cloudtrail.EnvelopeDetailType, env, src, n, params)
		if msg, err := dec.DecodeMessage([]byte(body)); err != nil || msg.Event == nil || msg.Event.Pipeline == nil {
			errs = append(errs, fmt.Errorf("pipeline rule: the decoder does not classify a %s event the rule forwards: %v", n, err))
		}
	}
	return errors.Join(errs...)
}

// checkForwarderPipelineRule: a forwarder also sends changes to its own
// rules home (EventBridge calls only: it has no queue), with its role.
func checkForwarderPipelineRule(m *tfDir) error {
	r, err := m.block("resource", "aws_cloudwatch_event_rule", "pipeline")
	if err != nil {
		return err
	}
	names, err := m.localValue("rule_names")
	if err != nil {
		return err
	}
	a, err := attr(r, "event_pattern")
	if err != nil {
		return err
	}
	v, err := m.evalWith(a.Expr, nil, map[string]cty.Value{"local": cty.ObjectVal(map[string]cty.Value{"rule_names": names})})
	if err != nil {
		return err
	}
	var p pipelinePattern
	if err := decodeJSONString(v, &p); err != nil {
		return err
	}
	var wantNames []string
	for _, n := range cloudtrail.PipelineEventNames() {
		if n != "SetQueueAttributes" {
			wantNames = append(wantNames, n)
		}
	}
	var errs []error
	if !slices.Equal(p.Source, []string{cloudtrail.EventsEnvelopeSource}) || !slices.Equal(p.Detail.EventSource, []string{cloudtrail.EventsEventSource}) ||
		!slices.Equal(sorted(p.Detail.EventName), sorted(wantNames)) {
		errs = append(errs, fmt.Errorf("forwarder pipeline rule: source %q eventSource %q eventName %q, want %s, %s and %q",
			p.Source, p.Detail.EventSource, p.Detail.EventName, cloudtrail.EventsEnvelopeSource, cloudtrail.EventsEventSource, wantNames))
	}
	ruleNames, err := m.ruleNames()
	if err != nil {
		errs = append(errs, err)
	}
	scope := map[string][]string{}
	for _, o := range p.Detail.Or {
		for k, vs := range o.RequestParameters {
			scope[k] = append(scope[k], vs...)
		}
	}
	for _, param := range []string{"name", "rule"} {
		if !slices.Equal(sorted(scope[param]), sorted(ruleNames)) {
			errs = append(errs, fmt.Errorf("forwarder pipeline rule: requestParameters.%s %q, want its own rules %q", param, scope[param], ruleNames))
		}
	}
	target, err := m.block("resource", "aws_cloudwatch_event_target", "pipeline")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for attrName, want := range map[string]string{"arn": "var.target_event_bus_arn", "role_arn": "aws_iam_role.forward.arn"} {
		if a, err := attr(target, attrName); err != nil || traversal(a.Expr) != want {
			errs = append(errs, fmt.Errorf("forwarder pipeline target: %s is not %s (%v)", attrName, want, err))
		}
	}
	return errors.Join(errs...)
}

// checkCoverageAlarms: the silent-regions alarm reads the metric the
// streamer logs (namespace, name, dimension), missing data breaching; and
// a FailedInvocations alarm watches every rule.
func checkCoverageAlarms(m *tfDir) error {
	var errs []error
	silent, err := m.block("resource", "aws_cloudwatch_metric_alarm", "silent_regions")
	if err != nil {
		return err
	}
	for _, f := range []struct{ attr, want string }{
		{"namespace", streamer.EMFNamespace}, {"metric_name", "SilentRegions"}, {"treat_missing_data", "breaching"},
		// Replicas each see part of the traffic: all must count a silence.
		{"statistic", "Minimum"},
	} {
		if got, err := literalString(silent, f.attr); got != f.want {
			errs = append(errs, fmt.Errorf("silent_regions alarm: %s %q (%v), want %q (the streamer's embedded metric)", f.attr, got, err, f.want))
		}
	}
	if a, err := attr(silent, "dimensions"); err != nil || strings.ReplaceAll(m.text(a.Expr), " ", "") != "{QueueName=aws_sqs_queue.events.name}" {
		errs = append(errs, fmt.Errorf("silent_regions alarm: dimensions are not {QueueName = aws_sqs_queue.events.name} (%v)", err))
	}

	failed, err := m.block("resource", "aws_cloudwatch_metric_alarm", "failed_invocations")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, f := range []struct{ attr, want string }{{"namespace", "AWS/Events"}, {"metric_name", "FailedInvocations"}} {
		if got, err := literalString(failed, f.attr); got != f.want {
			errs = append(errs, fmt.Errorf("failed_invocations alarm: %s %q (%v), want %q", f.attr, got, err, f.want))
		}
	}
	fe, err := attr(failed, "for_each")
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, r := range m.blocks("resource", "aws_cloudwatch_event_rule") {
		if ref := "aws_cloudwatch_event_rule." + r.Labels[1]; !strings.Contains(m.text(fe.Expr), ref) {
			errs = append(errs, fmt.Errorf("failed_invocations alarm does not watch %s", ref))
		}
	}
	return errors.Join(errs...)
}

// localValue evaluates a local whose expression needs only variables.
func (m *tfDir) localValue(name string) (cty.Value, error) {
	for _, b := range m.blocks("locals") {
		if a, ok := b.Body.Attributes[name]; ok {
			return m.eval(a.Expr, nil)
		}
	}
	return cty.NilVal, fmt.Errorf("%s: no local %s", m.dir, name)
}

// localText is the expression of a local as written.
func (m *tfDir) localText(name string) (string, error) {
	for _, b := range m.blocks("locals") {
		if a, ok := b.Body.Attributes[name]; ok {
			return m.text(a.Expr), nil
		}
	}
	return "", fmt.Errorf("%s: no local %s", m.dir, name)
}

// ruleNames are the names of the module's EventBridge rules (with the
// variables' defaults).
func (m *tfDir) ruleNames() ([]string, error) {
	var out []string
	for _, r := range m.blocks("resource", "aws_cloudwatch_event_rule") {
		a, err := attr(r, "name")
		if err != nil {
			return out, err
		}
		v, err := m.eval(a.Expr, nil)
		if err != nil {
			return out, err
		}
		out = append(out, v.AsString())
	}
	return out, nil
}

func decodeJSONString(v cty.Value, into any) error {
	if v.Type() != cty.String {
		return errors.New("event_pattern is not a jsonencode(...) string")
	}
	return json.Unmarshal([]byte(v.AsString()), into)
}
