package cloudtrail

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSplitLines(t *testing.T) {
	long := strings.Repeat("x", 70<<10) // past bufio's 64 KiB buffer
	tests := []struct {
		name  string
		input string
		max   int
		want  []string // "N:text", or "N:TOO LONG"
	}{
		{"plain", "a\nb\n", 10, []string{"1:a", "2:b"}},
		{"no final newline", "a\nb", 10, []string{"1:a", "2:b"}},
		{"blank lines and CRLF are skipped and trimmed", "\n a \r\n\r\n\tb\n", 10, []string{"2:a", "4:b"}},
		{"a line at the limit", "abc\n", 3, []string{"1:abc"}},
		{"a line over the limit is reported and skipped", "abc\nabcd\nz\n", 3, []string{"1:abc", "2:TOO LONG", "3:z"}},
		{"a line longer than the read buffer", "a\n" + long + "\nb", 100 << 10, []string{"1:a", "2:" + long, "3:b"}},
		{"a line longer than the buffer and the limit", "a\n" + long + "\nb", 1 << 10, []string{"1:a", "2:TOO LONG", "3:b"}},
		{"a last line over the limit", "a\n" + long, 10, []string{"1:a", "2:TOO LONG"}},
		{"empty", "", 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for l, err := range SplitLines(strings.NewReader(tt.input), tt.max) {
				switch {
				case errors.Is(err, ErrLineTooLong):
					got = append(got, strconv.Itoa(l.N)+":TOO LONG")
				case err != nil:
					t.Fatal(err)
				default:
					got = append(got, strconv.Itoa(l.N)+":"+string(l.Bytes))
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %.200q, want %.200q", got, tt.want)
			}
		})
	}
	// A read error ends the stream with that error.
	var last error
	for _, err := range SplitLines(iotest.TimeoutReader(strings.NewReader(strings.Repeat("a\n", 40<<10))), 10) {
		last = err
	}
	if !errors.Is(last, iotest.ErrTimeout) {
		t.Errorf("last error %v, want the read error", last)
	}
}
