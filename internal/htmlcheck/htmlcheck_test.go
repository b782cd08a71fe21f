package htmlcheck

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestProblems: the check catches what it is for, and passes a page that
// holds only its own style sheet and script under a matching policy.
func TestProblems(t *testing.T) {
	const ok = `<meta http-equiv="Content-Security-Policy" content="x"><style>p{}</style><script>1</script>`
	for _, page := range []string{
		ok + `<link rel="stylesheet" href="https://cdn.example/x.css">`,
		ok + `<img src="//tracker.example/p.gif">`,
		`<style>@import "https://x/y.css";</style><script>1</script>`,
		`<style>p{background:url(https://x/y.png)}</style><script>1</script>`,
		`<style>@font-face{font-family:x;src:local(x)}</style><script>1</script>`,
		ok + `<script src="https://x/y.js"></script>`,
		ok + `<svg><image href="https://x/y.png"></image></svg>`,
		ok + `<div onclick="x()">`,
		ok + `<p style="color:red">`,
		ok, // the policy does not name the style sheet and script
	} {
		doc, err := html.Parse(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		if len(Problems(doc)) == 0 {
			t.Errorf("not caught: %s", page)
		}
	}
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	good := `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` +
		`style-src ` + hash("p{}") + `; script-src ` + hash("1") + `">` +
		`<style>p{}</style></head><body><script>1</script></body></html>`
	doc, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p := Problems(doc); len(p) != 0 {
		t.Errorf("a self-contained page: %q", p)
	}
	if _, err := Parse([]byte("<p>a fragment")); err == nil {
		t.Error("Parse accepted a fragment as a page")
	}
}
