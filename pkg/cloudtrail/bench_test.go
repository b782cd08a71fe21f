package cloudtrail

import (
	"testing"
)

func BenchmarkDecodeEnvelope(b *testing.B) {
	body := []byte(envelope("aws.sts", "AWS API Call via CloudTrail", "111122223333", sampleRecord))
	d := NewDecoder(Config{})
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeMessage(body); err != nil {
			b.Fatal(err)
		}
	}
}
