package tfcontract

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sdkServicePrefix is the import path prefix of the AWS SDK's service
// packages.
const sdkServicePrefix = "github.com/aws/aws-sdk-go-v2/service/"

// sdkCall is one AWS API operation that Go code calls.
type sdkCall struct {
	service   string // the service package's name: sqs, dynamodb, eventbridge
	operation string // ReceiveMessage
	pos       string // where the code names it, relative to the root
}

func (c sdkCall) op() string { return c.service + "." + c.operation }

// helperCalls are SDK functions that call an operation on the code's
// behalf: the code names no ...Input type for them.
func helperCalls() map[string]string {
	return map[string]string{
		"github.com/aws/aws-sdk-go-v2/credentials/stscreds.NewAssumeRoleProvider": "sts.AssumeRole",
	}
}

// sdkCalls finds the AWS SDK operations that the packages in dirs (relative
// to root, the directory of module modPath) and every package of the
// module they import call. Every operation of an SDK service package takes
// a *<Operation>Input, so production code that names <service>.<X>Input
// calls X: directly on a client, through a consumer-side interface that
// declares it, or through a paginator. Test files are left out: fakes are
// not deployed.
func sdkCalls(root, modPath string, dirs ...string) ([]sdkCall, error) {
	seen := map[string]bool{}
	found := map[string]sdkCall{}
	queue := slices.Clone(dirs)
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		if seen[dir] {
			continue
		}
		seen[dir] = true
		imports, err := scanPackage(root, dir, found)
		if err != nil {
			return nil, err
		}
		for _, imp := range imports {
			if rest, ok := strings.CutPrefix(imp, modPath+"/"); ok {
				queue = append(queue, rest)
			}
		}
	}
	out := make([]sdkCall, 0, len(found))
	for _, c := range found {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b sdkCall) int { return strings.Compare(a.op(), b.op()) })
	return out, nil
}

// scanPackage records the calls of the non-test Go files of root/dir into
// found (first position wins) and returns their imports.
func scanPackage(root, dir string, found map[string]sdkCall) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("package %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	var imports []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		file := filepath.Join(root, dir, name)
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		// The package names this file uses for its imports.
		alias := map[string]string{}
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			imports = append(imports, p)
			name := path.Base(p)
			if spec.Name != nil {
				name = spec.Name.Name
			}
			alias[name] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			p, ok := alias[id.Name]
			if !ok {
				return true
			}
			rel, _ := filepath.Rel(root, fset.Position(sel.Pos()).Filename)
			pos := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), fset.Position(sel.Pos()).Line)
			var c sdkCall
			if op, ok := helperCalls()[p+"."+sel.Sel.Name]; ok {
				service, operation, _ := strings.Cut(op, ".")
				c = sdkCall{service: service, operation: operation, pos: pos}
			} else if svc, ok := strings.CutPrefix(p, sdkServicePrefix); ok && !strings.Contains(svc, "/") {
				operation, isInput := strings.CutSuffix(sel.Sel.Name, "Input")
				if !isInput || operation == "" {
					return true
				}
				c = sdkCall{service: path.Base(p), operation: operation, pos: pos}
			} else {
				return true
			}
			if _, dup := found[c.op()]; !dup {
				found[c.op()] = c
			}
			return true
		})
	}
	return imports, nil
}
