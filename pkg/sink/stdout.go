package sink

// IsStdout reports whether a sink URI names stdout (a command that writes
// its own view there must refuse it).
func IsStdout(uri string) bool {
	if uri == "" || uri == "-" {
		return true
	}
	_, kind, _, err := splitURI(uri, FormatNative)
	return err == nil && kind == "stdout"
}
