package idemhttp

import (
	"net/http"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/internal/core"
)

// Option configures Require.
type Option func(*config)

type config struct {
	core               core.Config
	tenant             func(*http.Request) string
	storeAfterResponse bool
}

func defaultConfig() config {
	c := config{core: core.Defaults(), tenant: defaultTenant}
	c.core.HeartbeatInterval = 0 // a third of the lease
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		c.core.CoveredMethods[m] = true
	}
	c.core.NotFinal = map[int32]bool{http.StatusTooManyRequests: true, http.StatusServiceUnavailable: true}
	return c
}

func defaultTenant(r *http.Request) string {
	id, _ := FromContext(r.Context())
	return idemkey.TenantNameFor(id)
}

// WithExclude makes the given routes bypass the middleware, each written
// "METHOD /path" (exact match; the path without its query string), e.g.
// "POST /v1/auth/login".
func WithExclude(routes ...string) Option {
	return func(c *config) {
		for _, r := range routes {
			c.core.ExcludedRoutes[r] = true
		}
	}
}

// WithCoveredMethods replaces the methods that go through the middleware
// (default POST, PUT, PATCH, DELETE; compared exactly, case included).
func WithCoveredMethods(methods ...string) Option {
	return func(c *config) {
		c.core.CoveredMethods = map[string]bool{}
		for _, m := range methods {
			c.core.CoveredMethods[m] = true
		}
	}
}

// WithRequireKey refuses a covered request without an Idempotency-Key
// (400, type missing-key) instead of running it unprotected.
func WithRequireKey() Option {
	return func(c *config) { c.core.RequireKey = true }
}

// WithRequireTenant refuses a covered request without a tenant (401, type
// missing-tenant) instead of running it unprotected.
func WithRequireTenant() Option {
	return func(c *config) { c.core.RequireTenant = true }
}

// WithTenantFunc sets how a request's tenant is found (default:
// TenantNameFor of the org id in the context, see WithOrgID). It must
// return a valid tenant name (map ids with idemkey.TenantNameFor), or ""
// for none.
func WithTenantFunc(f func(*http.Request) string) Option {
	return func(c *config) { c.tenant = f }
}

// WithLease sets the lease asked for each request's key (default 30s); a
// running handler renews it every third of it unless
// WithHeartbeatInterval says otherwise.
func WithLease(d time.Duration) Option {
	return func(c *config) { c.core.Lease = d }
}

// WithHeartbeatInterval sets how often a running handler's lease is
// renewed (default: a third of the lease).
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.core.HeartbeatInterval = d }
}

// WithTTL sets how long completed responses are kept (default: the
// service's, 24h).
func WithTTL(d time.Duration) Option {
	return func(c *config) { c.core.TTL = d }
}

// WithNotFinalStatuses replaces the statuses that are released instead of
// stored, so that a retry runs the handler again (default 429 and 503).
func WithNotFinalStatuses(statuses ...int) Option {
	return func(c *config) {
		c.core.NotFinal = map[int32]bool{}
		for _, s := range statuses {
			c.core.NotFinal[int32(s)] = true
		}
	}
}

// WithFailOpen runs requests unprotected when idemkeyd gives no answer,
// instead of refusing them (503). It does not apply when the service
// answers that it cannot take the request (RESOURCE_EXHAUSTED).
func WithFailOpen() Option {
	return func(c *config) { c.core.FailOpen = true }
}

// WithWaitForResult makes a retry that finds the first attempt running wait
// up to d for its result (polling every 50ms): it replays the result once
// stored, runs the handler if the first attempt's lease lapses or it is
// released, and gets the 409 after d.
func WithWaitForResult(d time.Duration) Option {
	return func(c *config) { c.core.WaitForResult = d }
}

// WithWaitPollInterval sets how often WithWaitForResult polls (default
// 50ms).
func WithWaitPollInterval(d time.Duration) Option {
	return func(c *config) { c.core.WaitPollInterval = d }
}

// WithMaxKeyBytes sets the longest accepted key (default 256). Keep it at
// most idemkeyd's --max_key_bytes: longer keys would be refused by the
// service (500).
func WithMaxKeyBytes(n int) Option {
	return func(c *config) { c.core.MaxKeyBytes = n }
}

// WithObserver sets who is told of every decision and finish (events,
// timings and the key service's own error messages).
func WithObserver(o idemkey.Observer) Option {
	return func(c *config) { c.core.Observer = o }
}

// WithStoreAfterResponse sends the handler's response before storing it,
// so the app's client does not wait for that second durable write. The
// request's goroutine sends it (with Content-Length, flushed) and then
// stores it, so http.Server.Shutdown still waits for the store. Until it
// lands, a retry of the key is answered 409 (or waits, WithWaitForResult);
// if the process dies in between, the lease lapses and a retry runs the
// handler again (docs/semantics.md, "Storing after the response"). The
// client's next request on the same kept-alive connection is read once the
// store has returned, so a retry there is replayed. Behind a
// ResponseWriter that cannot flush, the response leaves when the handler
// returns, after the store, as without the option.
func WithStoreAfterResponse() Option {
	return func(c *config) { c.storeAfterResponse = true }
}
