package htmlcheck

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

// page builds a page whose policy names exactly its style sheet and
// script, so that the only problem in it is the one a case adds.
func page(css, js, body string) string {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` +
		`style-src ` + hash(css) + `; script-src ` + hash(js) + `">` +
		`<style>` + css + `</style></head><body>` + body + `<script>` + js + `</script></body></html>`
}

// TestProblems: each check catches what it is for, on a page that is
// otherwise self-contained, and a self-contained page passes.
func TestProblems(t *testing.T) {
	const css, js = "p{}", "1"
	tests := []struct {
		name, page, want string
	}{
		{"stylesheet link", page(css, js, `<link rel="stylesheet" href="https://cdn.example/x.css">`), "element <link>"},
		{"image", page(css, js, `<img src="//tracker.example/p.gif">`), "element <img>"},
		{"@import", page(`@import "https://x/y.css";`, js, ""), "(@import)"},
		{"url() in the style sheet", page(`p{background:url(https://x/y.png)}`, js, ""), "(url()"},
		{"@font-face", page(`@font-face{font-family:x;src:local(x)}`, js, ""), "(@font-face)"},
		{"external script", page(css, js, `<script src="https://x/y.js"></script>`), "2 scripts"},
		{"SVG image", page(css, js, `<svg><image href="https://x/y.png"></image></svg>`), "SVG element <image>"},
		{"event handler", page(css, js, `<div onclick="x()">`), "event handler onclick"},
		{"style attribute", page(css, js, `<p style="color:red">`), "style attribute"},
		{"external-looking value", page(css, js, `<p title="https://x/">`), "external-looking value"},
		{"script fetches", page(css, `fetch("/x")`, ""), "uses fetch("},
		{"a policy that names other content", strings.Replace(page(css, js, ""), "<style>p{}", "<style>q{}", 1), "Content-Security-Policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := Parse([]byte(tt.page))
			if err != nil {
				t.Fatal(err)
			}
			p := Problems(doc)
			if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), tt.want) {
				t.Errorf("problems %q, want one containing %q", p, tt.want)
			}
		})
	}
	doc, err := Parse([]byte(page(css, js, "<p>fine</p>")))
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
