package idemkey

import "context"

type orgIDKey struct{}

// WithOrgID returns a context carrying the caller's organisation id. An
// app's auth middleware calls it once it knows the account; the default
// tenant function of the middleware maps it with TenantNameFor.
func WithOrgID(ctx context.Context, orgID string) context.Context {
	return context.WithValue(ctx, orgIDKey{}, orgID)
}

// OrgIDFromContext returns the organisation id WithOrgID put in ctx, and
// whether there was one.
func OrgIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(orgIDKey{}).(string)
	return id, ok
}
