package config

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Secret holds a credential read from the environment. It prints as
// [redacted] through fmt (every verb), slog and JSON; Reveal returns the
// value. The value sits behind a pointer so that printing a struct that holds
// a Secret in an unexported field (fmt does not call methods there) shows an
// address, not the credential.
type Secret struct{ v *string }

// NewSecret wraps a credential.
func NewSecret(v string) Secret {
	if v == "" {
		return Secret{}
	}
	return Secret{&v}
}

// Reveal returns the credential itself: pass it to the client that needs it,
// never to a logger.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether no credential is set.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return "[redacted]"
}

// Format prints the redacted form whatever the verb (%#v, %x and %d
// included).
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v', 's', 'q', 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
	default:
		fmt.Fprintf(f, "%%!%c(config.Secret=%s)", verb, s.String())
	}
}

// LogValue redacts the secret in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON redacts the secret in JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }
