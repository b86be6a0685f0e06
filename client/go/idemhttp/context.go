package idemhttp

import (
	"context"

	idemkey "github.com/idemkey/idemkey/client/go"
)

// WithOrgID returns a context carrying the caller's organisation id, for
// the default tenant function. An app's auth middleware calls it once it
// knows the account:
//
//	next.ServeHTTP(w, r.WithContext(idemhttp.WithOrgID(r.Context(), orgID)))
func WithOrgID(ctx context.Context, orgID string) context.Context {
	return idemkey.WithOrgID(ctx, orgID)
}

// FromContext returns the organisation id WithOrgID put in ctx, and whether
// there was one. Without one, the default tenant function gives no tenant.
func FromContext(ctx context.Context) (string, bool) {
	return idemkey.OrgIDFromContext(ctx)
}
