package policies

import "context"

type screeningKey struct{}

// WithScreening marks ctx as the evaluation of a withdrawal that is only
// intended (the screening API's pending outflow), not a movement seen on
// chain. The screening API evaluates through the same policies, so every
// detector judges the request as it would judge the outflow, but nothing has
// moved yet, so the stateful detectors record nothing:
//
//   - unapproved-outflow does not judge it and consumes no intent: the
//     screening request is the approval path itself;
//   - velocity and structuring sum the window as it is plus the request,
//     without adding the request to it;
//   - new-counterparty judges the destination but does not remember it;
//   - forwarding follows nothing;
//   - the engine does not record the alerts for a later retraction.
func WithScreening(ctx context.Context) context.Context {
	return context.WithValue(ctx, screeningKey{}, true)
}

// Screening reports whether ctx is a screening evaluation (WithScreening).
func Screening(ctx context.Context) bool {
	v, _ := ctx.Value(screeningKey{}).(bool)
	return v
}
