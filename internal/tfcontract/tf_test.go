package tfcontract

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// tfDir is one Terraform module: the .tf files of one directory, parsed.
type tfDir struct {
	dir   string
	files []*hcl.File
}

// loadDir parses every .tf file of dir (not of its subdirectories).
func loadDir(t *testing.T, dir string) *tfDir {
	t.Helper()
	m, err := parseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parseDir is loadDir for a check that reads another module.
func parseDir(dir string) (*tfDir, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no .tf files in %s (%v)", dir, err)
	}
	m := &tfDir{dir: dir}
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %v", p, diags)
		}
		m.files = append(m.files, f)
	}
	return m, nil
}

// blocks returns the top-level blocks of a type whose labels start with
// labels, in file order.
func (m *tfDir) blocks(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, f := range m.files {
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
				out = append(out, b)
			}
		}
	}
	return out
}

// block returns the one top-level block of a type with exactly these
// labels.
func (m *tfDir) block(typ string, labels ...string) (*hclsyntax.Block, error) {
	var found []*hclsyntax.Block
	for _, b := range m.blocks(typ, labels...) {
		if len(b.Labels) == len(labels) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s: %d blocks %s %q, want 1", m.dir, len(found), typ, labels)
	}
	return found[0], nil
}

// text is the source of a node as written.
func (m *tfDir) text(n hclsyntax.Node) string {
	r := n.Range()
	for _, f := range m.files {
		if f.Body.(*hclsyntax.Body).SrcRange.Filename == r.Filename {
			return string(r.SliceBytes(f.Bytes))
		}
	}
	return ""
}

// variables are the defaults of the module's variables (unknown when a
// variable has none), overridden by over.
func (m *tfDir) variables(over map[string]cty.Value) cty.Value {
	vars := map[string]cty.Value{}
	for _, b := range m.blocks("variable") {
		v := cty.DynamicVal
		if a, ok := b.Body.Attributes["default"]; ok {
			if d, diags := a.Expr.Value(nil); !diags.HasErrors() {
				v = d
			}
		}
		vars[b.Labels[0]] = v
	}
	for k, v := range over {
		vars[k] = v
	}
	return cty.ObjectVal(vars)
}

// eval evaluates expr with the variables' defaults (overridden by over)
// and the few functions the checked expressions call. It fails on what
// cannot be known without a plan (resource attributes, locals).
func (m *tfDir) eval(expr hcl.Expression, over map[string]cty.Value) (cty.Value, error) {
	return m.evalWith(expr, over, nil)
}

// evalWith is eval with more root names (local, aws_sqs_queue, ...) set to
// stand-in values.
func (m *tfDir) evalWith(expr hcl.Expression, over, roots map[string]cty.Value) (cty.Value, error) {
	vars := map[string]cty.Value{"var": m.variables(over)}
	for k, v := range roots {
		vars[k] = v
	}
	ctx := &hcl.EvalContext{
		Variables: vars,
		Functions: map[string]function.Function{
			"contains": stdlib.ContainsFunc, "length": stdlib.LengthFunc, "jsonencode": stdlib.JSONEncodeFunc,
		},
	}
	v, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("evaluate %s: %s", expr.Range(), diags.Error())
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, fmt.Errorf("evaluate %s: not known before a plan", expr.Range())
	}
	return v, nil
}

// decode evaluates expr into a Go value through its JSON form.
func (m *tfDir) decode(expr hcl.Expression, over map[string]cty.Value, into any) error {
	v, err := m.eval(expr, over)
	if err != nil {
		return err
	}
	if v.Type() == cty.String { // a jsonencode(...) result
		return json.Unmarshal([]byte(v.AsString()), into)
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return fmt.Errorf("%s: %w", expr.Range(), err)
	}
	return json.Unmarshal(b, into)
}

// attr returns a block's attribute, or an error naming the block.
func attr(b *hclsyntax.Block, name string) (*hclsyntax.Attribute, error) {
	a, ok := b.Body.Attributes[name]
	if !ok {
		return nil, fmt.Errorf("%s %s: no %s", b.Type, strings.Join(b.Labels, "."), name)
	}
	return a, nil
}

// nested returns the blocks of a type inside b.
func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, n := range b.Body.Blocks {
		if n.Type == typ {
			out = append(out, n)
		}
	}
	return out
}

// literal evaluates a constant expression (no variables) into into.
func literal(expr hcl.Expression, into any) error {
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return errors.New(diags.Error())
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// traversal is the text of a reference expression (aws_sqs_queue.dlq.arn),
// or "" when expr is not one.
func traversal(expr hcl.Expression) string {
	tr, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() {
		return ""
	}
	var parts []string
	for _, s := range tr {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		case hcl.TraverseIndex:
			parts = append(parts, fmt.Sprintf("[%s]", s.Key.GoString()))
		}
	}
	return strings.Join(parts, ".")
}
