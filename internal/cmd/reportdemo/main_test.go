package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sessionwatch/sessionwatch/pkg/report"
)

// TestFromCorpus keeps the demo working: the real classifier over a small
// corpus, hostile events included, through filter, accumulator and page.
func TestFromCorpus(t *testing.T) {
	flt, err := report.NewFilter(report.FilterConfig{Accounts: []string{"111122223333", "4444*"}})
	if err != nil {
		t.Fatal(err)
	}
	s, rows, err := fromCorpus(1, 400, 3, 3, true, flt, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Classified == 0 || s.Findings == 0 || len(rows) != s.Findings || s.Filtered[report.FilterAccount] == 0 {
		t.Fatalf("classified %d findings %d rows %d filtered %v", s.Classified, s.Findings, len(rows), s.Filtered)
	}
	if s.Classified+s.FilteredTotal() != s.InScope {
		t.Errorf("%d classified + %d filtered != %d in scope", s.Classified, s.FilteredTotal(), s.InScope)
	}
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, s, rows, report.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile SourceIdentity is missing or not escaped")
	}
}
