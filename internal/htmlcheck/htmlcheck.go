// Package htmlcheck tells whether an HTML page is self-contained: it
// fetches nothing (no script, style sheet, font, image or frame from
// elsewhere), runs no script but its own, and its Content-Security-Policy
// allows exactly its own style sheet and script. Tests of the HTML report
// (pkg/report, cmd/backfill) use it; production code never imports it.
package htmlcheck

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Parse parses a page; html.Parse accepts almost anything, so Parse also
// requires the <html>, <head> and <body> a page of ours always has in its
// source, and a doctype.
func Parse(page []byte) (*html.Node, error) {
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	lower := bytes.ToLower(page)
	for _, tag := range []string{"<!doctype html>", "<html", "<head>", "</head>", "<body>", "</body>", "</html>"} {
		if !bytes.Contains(lower, []byte(tag)) {
			return nil, fmt.Errorf("the page has no %s", tag)
		}
	}
	return doc, nil
}

// Walk calls fn on n and every node under it, in document order.
func Walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		Walk(c, fn)
	}
}

// Text is the text under n.
func Text(n *html.Node) string {
	var b strings.Builder
	Walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// Attr is n's attribute key.
func Attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// ByID is the first element under doc with the id, or nil.
func ByID(doc *html.Node, id string) *html.Node {
	var found *html.Node
	Walk(doc, func(n *html.Node) {
		if v, ok := Attr(n, "id"); ok && v == id && found == nil {
			found = n
		}
	})
	return found
}

// Problems lists what would make a page fetch or run something not in the
// file, or not be allowed by its own policy; none for a self-contained
// page.
func Problems(doc *html.Node) []string {
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var scripts, styles []string
	csp := ""
	Walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.DataAtom {
		case atom.Link, atom.Iframe, atom.Frame, atom.Object, atom.Embed, atom.Img, atom.Image, atom.Base,
			atom.Audio, atom.Video, atom.Source, atom.Track, atom.Form, atom.Picture:
			errorf("element <%s> in the page", n.Data)
		case atom.Script:
			scripts = append(scripts, Text(n))
		case atom.Style:
			styles = append(styles, Text(n))
		case atom.Meta:
			if v, _ := Attr(n, "http-equiv"); strings.EqualFold(v, "Content-Security-Policy") {
				csp, _ = Attr(n, "content")
			}
		}
		if n.Namespace == "svg" && (n.Data == "use" || n.Data == "image" || n.Data == "foreignObject" || n.Data == "a") {
			errorf("SVG element <%s> in the page", n.Data)
		}
		for _, a := range n.Attr {
			key := strings.ToLower(a.Key)
			val := strings.ToLower(strings.TrimSpace(a.Val))
			switch {
			case strings.HasPrefix(key, "on"):
				errorf("event handler %s=%q on <%s>", a.Key, a.Val, n.Data)
			case key == "style":
				errorf("style attribute on <%s>", n.Data)
			case key == "src" || key == "href" || key == "srcset" || key == "action" || key == "formaction" ||
				key == "poster" || key == "background" || key == "data" || key == "ping" || a.Namespace == "xlink":
				errorf("reference %s=%q on <%s>", a.Key, a.Val, n.Data)
			case strings.Contains(val, "http:") || strings.Contains(val, "https:") || strings.HasPrefix(val, "//") ||
				strings.Contains(val, "url(") || strings.Contains(val, "javascript:"):
				errorf("external-looking value %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
		}
	})
	if len(scripts) != 1 || len(styles) != 1 {
		errorf("%d scripts and %d style sheets, want one of each", len(scripts), len(styles))
		return problems
	}
	for _, css := range styles {
		lower := strings.ToLower(css)
		for _, bad := range []string{"@import", "url(", "@font-face", "http:", "https:"} {
			if strings.Contains(lower, bad) {
				errorf("the style sheet loads something (%s)", bad)
			}
		}
	}
	for _, js := range scripts {
		for _, bad := range []string{"fetch(", "XMLHttpRequest", "import(", "innerHTML", "eval(", "http:", "https:", "WebSocket"} {
			if strings.Contains(js, bad) {
				errorf("the script uses %s", bad)
			}
		}
	}
	// The policy allows exactly the page's own style sheet and script.
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	want := "default-src 'none'; style-src " + hash(styles[0]) + "; script-src " + hash(scripts[0])
	if !strings.HasPrefix(csp, want) {
		errorf("Content-Security-Policy %q does not start with %q", csp, want)
	}
	return problems
}
