// The errors the API maps to status codes, and how a failed decision is
// reported.

package holds

import (
	"errors"
	"fmt"
)

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("no such hold")
	// errAbsent aborts an Update that found no record to change.
	errAbsent = errors.New("absent")
)

// ForbiddenError is an approval the rules refuse (403).
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

// ClosedError is a decision on a hold that is no longer held (409).
type ClosedError struct {
	ID     string
	Status Status
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("hold %s is %s: it takes no more decisions", e.ID, e.Status)
}

// decisionError returns the errors the API maps to status codes (no such
// hold, forbidden, closed) as they are and says which hold any other one is
// about.
func (m *Manager) decisionError(id string, err error) error {
	var fe *ForbiddenError
	var ce *ClosedError
	if errors.Is(err, ErrNotFound) || errors.As(err, &fe) || errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("decide hold %s: %w", id, err)
}
