package idemgrpc

import (
	"context"
	"strings"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/internal/core"
	"google.golang.org/grpc/codes"
)

// Method is the method name the core sees for every gRPC call.
const Method = "grpc"

// Option configures UnaryServerInterceptor.
type Option func(*config)

type config struct {
	core   core.Config
	tenant func(ctx context.Context, fullMethod string) string
}

func defaultConfig() config {
	c := config{core: core.Defaults(), tenant: defaultTenant}
	c.core.HeartbeatInterval = 0 // a third of the lease
	c.core.CoveredMethods[Method] = true
	c.core.NotFinal = map[int32]bool{int32(codes.Unavailable): true, int32(codes.ResourceExhausted): true}
	return c
}

func defaultTenant(ctx context.Context, _ string) string {
	id, _ := idemkey.OrgIDFromContext(ctx)
	return idemkey.TenantNameFor(id)
}

// WithExclude makes the given methods bypass the middleware, each a full
// method name ("/pkg.Service/Method"; "grpc /pkg.Service/Method" works too).
func WithExclude(fullMethods ...string) Option {
	return func(c *config) {
		for _, m := range fullMethods {
			c.core.ExcludedRoutes[Method+" "+strings.TrimPrefix(m, Method+" ")] = true
		}
	}
}

// WithRequireKey refuses a call without an idempotency-key
// (INVALID_ARGUMENT) instead of running it unprotected.
func WithRequireKey() Option { return func(c *config) { c.core.RequireKey = true } }

// WithRequireTenant refuses a call without a tenant (UNAUTHENTICATED)
// instead of running it unprotected.
func WithRequireTenant() Option { return func(c *config) { c.core.RequireTenant = true } }

// WithTenantFunc sets how a call's tenant is found (default: TenantNameFor
// of the org id that idemkey.WithOrgID put in the context). It must return
// a valid tenant name, or "" for none.
func WithTenantFunc(f func(ctx context.Context, fullMethod string) string) Option {
	return func(c *config) { c.tenant = f }
}

// WithLease sets the lease of each call's key (default 30s), renewed every
// third of it unless WithHeartbeatInterval says otherwise.
func WithLease(d time.Duration) Option { return func(c *config) { c.core.Lease = d } }

// WithHeartbeatInterval sets how often a running handler's lease is renewed.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.core.HeartbeatInterval = d }
}

// WithTTL sets how long completed replies are kept (default: the service's).
func WithTTL(d time.Duration) Option { return func(c *config) { c.core.TTL = d } }

// WithNotFinalCodes replaces the codes that are released instead of stored
// (default UNAVAILABLE and RESOURCE_EXHAUSTED).
func WithNotFinalCodes(cs ...codes.Code) Option {
	return func(c *config) {
		c.core.NotFinal = map[int32]bool{}
		for _, code := range cs {
			c.core.NotFinal[int32(code)] = true
		}
	}
}

// WithFailOpen runs calls unprotected when idemkeyd gives no answer,
// instead of refusing them (UNAVAILABLE).
func WithFailOpen() Option { return func(c *config) { c.core.FailOpen = true } }

// WithWaitForResult makes a call that finds the first attempt running wait
// up to d for its result (ABORTED after that).
func WithWaitForResult(d time.Duration) Option {
	return func(c *config) { c.core.WaitForResult = d }
}

// WithMaxKeyBytes sets the longest accepted key (default 256).
func WithMaxKeyBytes(n int) Option { return func(c *config) { c.core.MaxKeyBytes = n } }

// WithObserver sets who is told of every decision and finish.
func WithObserver(o idemkey.Observer) Option { return func(c *config) { c.core.Observer = o } }
