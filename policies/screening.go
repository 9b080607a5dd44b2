package policies

import "context"

type screeningKey struct{}

// WithScreening marks ctx as the evaluation of a withdrawal that is only
// intended (the screening API's pending outflow), not a movement seen on
// chain. The screening API evaluates through the same policies, so every
// detector judges the request as it would judge the outflow; detectors that
// keep state or reconcile must look at Screening(ctx):
//
//   - unapproved-outflow must not fire and must not consume an intent: the
//     screening request is the approval path itself;
//   - velocity, new-counterparty, forwarding and the like may read their
//     state to judge the request but must not record it, or the real outflow
//     would be counted twice.
func WithScreening(ctx context.Context) context.Context {
	return context.WithValue(ctx, screeningKey{}, true)
}

// Screening reports whether ctx is a screening evaluation (WithScreening).
func Screening(ctx context.Context) bool {
	v, _ := ctx.Value(screeningKey{}).(bool)
	return v
}
