// Package benchmarks measures the hot path across packages: decoding an
// intake message and classifying it against a warm session cache, beside the
// seed's way of decoding (a full JSON unmarshal per extracted field).
package benchmarks
