package verify

import "context"

// resultKey is the context key of the *Result the Middleware stores.
type resultKey struct{}

// FromContext returns the Result of the verification the Middleware did for
// the request whose context is ctx, and false when ctx does not come from a
// request the Middleware let through. Handlers behind the Middleware use it
// to learn the signed id (the idempotency key) and which key matched.
func FromContext(ctx context.Context) (Result, bool) {
	res, ok := ctx.Value(resultKey{}).(*Result)
	if !ok || res == nil {
		return Result{}, false
	}
	return *res, true
}
