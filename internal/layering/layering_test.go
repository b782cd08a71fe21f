// Package layering holds tests of the module's package layering.
package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/sessionwatch/sessionwatch"

// TestPublicPackagesImportNoInternal: pkg/ is the public library; it may not
// depend on internal/ (flag helpers, fakes, demo programs), directly or not.
// Tests of pkg/ may: they are not part of what an importer builds.
func TestPublicPackagesImportNoInternal(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"/pkg/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], module+"/pkg/") {
			continue
		}
		checked++
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, module+"/internal/") {
				t.Errorf("%s depends on %s", strings.TrimPrefix(fields[0], module+"/"), strings.TrimPrefix(dep, module+"/"))
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked %d pkg/ packages: go list output not understood", checked)
	}
}
