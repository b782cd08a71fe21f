package layering

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// packageRow is a row of the package table in docs/ARCHITECTURE.md: its
// first cell is a package directory in backquotes.
var packageRow = regexp.MustCompile("(?m)^\\| `((?:cmd|pkg|internal)/[^`]+)` \\|")

// TestArchitecturePageNamesEveryPackage: the package table of
// docs/ARCHITECTURE.md names every package of the module, and every
// package it names exists, so the page cannot drift from the tree.
func TestArchitecturePageNamesEveryPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var tree []string
	for _, p := range strings.Fields(string(out)) {
		tree = append(tree, strings.TrimPrefix(p, module+"/"))
	}
	page, err := os.ReadFile(filepath.Join("..", "..", "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	missing, unknown := comparePackages(tree, packageRows(string(page)))
	for _, p := range missing {
		t.Errorf("docs/ARCHITECTURE.md does not name package %s: add a row saying what it owns", p)
	}
	for _, p := range unknown {
		t.Errorf("docs/ARCHITECTURE.md names %s, which is not a package of the module", p)
	}
	if len(tree) < 10 {
		t.Fatalf("go list found %d packages: output not understood", len(tree))
	}
}

// packageRows lists the packages named by the page's package table, in
// order, duplicates included.
func packageRows(page string) []string {
	var named []string
	for _, m := range packageRow.FindAllStringSubmatch(page, -1) {
		named = append(named, strings.TrimSuffix(m[1], "/"))
	}
	return named
}

// comparePackages returns the packages of tree the page does not name, and
// the names on the page that are no package of tree (or named twice).
func comparePackages(tree, named []string) (missing, unknown []string) {
	seen := map[string]bool{}
	for _, p := range named {
		if seen[p] || !slices.Contains(tree, p) {
			unknown = append(unknown, p)
		}
		seen[p] = true
	}
	for _, p := range tree {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	return missing, unknown
}

func TestComparePackages(t *testing.T) {
	page := "| package | owns |\n|---|---|\n| `pkg/a` | A. |\n| `pkg/gone` | G. |\n| `cmd/x/` | X. |\n| `pkg/a` | again |\nnot a row: `pkg/b`\n"
	named := packageRows(page)
	if want := []string{"pkg/a", "pkg/gone", "cmd/x", "pkg/a"}; !slices.Equal(named, want) {
		t.Fatalf("packageRows = %q, want %q", named, want)
	}
	for _, tc := range []struct {
		name                   string
		tree, named            []string
		wantMissing, wantExtra []string
	}{
		{"match", []string{"pkg/a", "cmd/x"}, []string{"cmd/x", "pkg/a"}, nil, nil},
		{"a package not named", []string{"pkg/a", "pkg/b"}, []string{"pkg/a"}, []string{"pkg/b"}, nil},
		{"a name with no package", []string{"pkg/a"}, []string{"pkg/a", "pkg/gone"}, nil, []string{"pkg/gone"}},
		{"named twice", []string{"pkg/a"}, []string{"pkg/a", "pkg/a"}, nil, []string{"pkg/a"}},
		{"the sample page", []string{"pkg/a", "cmd/x", "pkg/b"}, named, []string{"pkg/b"}, []string{"pkg/gone", "pkg/a"}},
	} {
		missing, extra := comparePackages(tc.tree, tc.named)
		if !slices.Equal(missing, tc.wantMissing) || !slices.Equal(extra, tc.wantExtra) {
			t.Errorf("%s: missing %q, unknown %q; want %q, %q", tc.name, missing, extra, tc.wantMissing, tc.wantExtra)
		}
	}
}
