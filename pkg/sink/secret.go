package sink

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Environment variables that hold sink secrets. A secret is read from its
// variable or from a file (SecretSource.File), never from a flag value:
// flag values show in process listings and shell history.
const (
	EnvHECToken      = "SESSIONWATCH_HEC_TOKEN"
	EnvWebhookSecret = "SESSIONWATCH_WEBHOOK_SECRET"
)

const redacted = "[redacted]"

// Secret holds a credential. Every way of printing it prints "[redacted]",
// so a Secret that reaches a log line, an error or a metric label by
// mistake gives nothing away.
type Secret struct{ v *secretValue }

// secretValue sits behind a pointer so that even %+v of a struct holding a
// Secret in an unexported field prints an address, not the value.
type secretValue struct{ s string }

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]" (%#v).
func (Secret) GoString() string { return redacted }

// MarshalJSON and MarshalText keep it out of structured logs.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// IsZero reports whether no secret was configured.
func (s Secret) IsZero() bool { return s.v == nil || s.v.s == "" }

func (s Secret) reveal() string {
	if s.v == nil {
		return ""
	}
	return s.v.s
}

func newSecret(v string) Secret { return Secret{v: &secretValue{s: v}} }

// SecretSource says where a secret comes from: File wins over Env.
type SecretSource struct {
	Env  string // environment variable name
	File string // path of a file holding the secret (trailing newline ignored)
}

// ErrNoSecret means a required secret is configured in neither place.
var ErrNoSecret = errors.New("secret not set")

// load reads the secret. Errors name the variable or file, never the value.
func (src SecretSource) load(lookupEnv func(string) (string, bool)) (Secret, error) {
	if src.File != "" {
		b, err := os.ReadFile(src.File)
		if err != nil {
			// The path is configuration, not the secret; the OS error holds no content.
			return Secret{}, fmt.Errorf("read secret file %s: %w", src.File, errors.Unwrap(err))
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return Secret{}, fmt.Errorf("secret file %s: %w (empty)", src.File, ErrNoSecret)
		}
		return newSecret(v), nil
	}
	if src.Env != "" {
		if lookupEnv == nil {
			lookupEnv = os.LookupEnv
		}
		if v, ok := lookupEnv(src.Env); ok && v != "" {
			return newSecret(v), nil
		}
		return Secret{}, fmt.Errorf("%w: set %s or give a file", ErrNoSecret, src.Env)
	}
	return Secret{}, ErrNoSecret
}
