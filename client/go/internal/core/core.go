package core

import (
	"context"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Core decides for every request of the routes it guards. It is safe for
// concurrent use.
type Core struct {
	keys idemkey.KeyService
	cfg  Config
}

// New returns a Core over keys.
func New(keys idemkey.KeyService, cfg Config) *Core {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = cfg.Lease / 3
	}
	if cfg.WaitPollInterval <= 0 {
		cfg.WaitPollInterval = 50 * time.Millisecond
	}
	if cfg.MaxKeyBytes <= 0 {
		cfg.MaxKeyBytes = idemkey.DefaultMaxKeyBytes
	}
	return &Core{keys: keys, cfg: cfg}
}

// Config returns the core's configuration.
func (c *Core) Config() Config { return c.cfg }

// Covers reports whether a request with this method and route goes through
// the middleware at all (its method is covered and it is not excluded), so
// that an adapter reads the body only when it is needed.
func (c *Core) Covers(method, route string) bool {
	return c.cfg.CoveredMethods[method] && !c.cfg.ExcludedRoutes[method+" "+route]
}

// IsNoAnswer reports whether err means the key service gave no answer
// (unreachable, timed out, cancelled by a draining server, the connection
// lost, a request it could not parse, a corrupt record), rather than a
// verdict on the call.
func IsNoAnswer(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted,
		codes.FailedPrecondition, codes.Aborted, codes.OutOfRange:
		return false
	default:
		return true
	}
}

// Begin decides what to do with req. For a Run, the caller must end the
// Execution (Finish or Release) once the handler returns or fails.
func (c *Core) Begin(ctx context.Context, req Request) Decision {
	start := time.Now()
	methodRoute := req.Method + " " + req.Route
	if !c.Covers(req.Method, req.Route) {
		c.notify(idemkey.EventBypass, req, 0, nil)
		return Decision{Action: Bypass}
	}
	if req.Tenant == "" {
		if !c.cfg.RequireTenant {
			c.notify(idemkey.EventBypass, req, 0, nil)
			return Decision{Action: Bypass}
		}
		c.notify(idemkey.EventMissingTenant, req, 0, nil)
		return reject(MissingTenant, "Tenant required",
			methodRoute+" needs the caller's account (tenant); authenticate and send the request again", 0)
	}
	if !req.HasKey {
		if !c.cfg.RequireKey {
			c.notify(idemkey.EventBypass, req, 0, nil)
			return Decision{Action: Bypass}
		}
		c.notify(idemkey.EventRejectedKey, req, 0, nil)
		return reject(MissingKey, "Idempotency key required",
			methodRoute+" requires an Idempotency-Key; send a unique value (a UUID) and reuse it on retries", 0)
	}
	if err := idemkey.ValidateKey(req.Key, c.cfg.MaxKeyBytes); err != nil {
		c.notify(idemkey.EventRejectedKey, req, 0, nil)
		return reject(MalformedKey, "Malformed idempotency key", "Idempotency-Key: "+err.Error(), 0)
	}

	target := req.Target
	if target == "" {
		target = req.Route
	}
	fp := idemkey.Fingerprint(req.Method, target, req.Body)
	reserve := &idemkeypb.ReserveRequest{
		Tenant:      req.Tenant,
		Key:         req.Key,
		Fingerprint: fp[:],
		AttemptId:   idemkey.NewAttemptID(),
		Lease:       durationpb.New(c.cfg.Lease),
	}
	if c.cfg.TTL > 0 {
		reserve.Ttl = durationpb.New(c.cfg.TTL)
	}
	waitUntil := start.Add(c.cfg.WaitForResult)
	for {
		r, err := c.keys.Reserve(ctx, reserve)
		if err != nil {
			return c.serviceFailure(req, start, err)
		}
		switch r.GetOutcome() {
		case idemkeypb.Outcome_OUTCOME_OWNER:
			c.notify(idemkey.EventRun, req, time.Since(start), nil)
			return Decision{Action: Run, Execution: c.newExecution(req, r.GetFencingToken())}
		case idemkeypb.Outcome_OUTCOME_COMPLETED:
			c.notify(idemkey.EventReplay, req, time.Since(start), nil)
			resp := r.GetResponse()
			if resp == nil {
				resp = &idemkeypb.StoredResponse{}
			}
			return Decision{Action: Replay, Replay: resp}
		case idemkeypb.Outcome_OUTCOME_MISMATCH:
			c.notify(idemkey.EventMismatch, req, time.Since(start), nil)
			return reject(Mismatch, "Idempotency key reused for another request",
				"this Idempotency-Key was first used with a different method, target or body; use a new key for a new request", 0)
		case idemkeypb.Outcome_OUTCOME_IN_PROGRESS:
			now := time.Now()
			leaseEnd := r.GetLeaseExpiresAt().AsTime()
			if !now.Add(c.cfg.WaitPollInterval).After(waitUntil) {
				wait := c.cfg.WaitPollInterval
				if d := leaseEnd.Sub(now); d < wait {
					wait = d
				}
				if err := sleep(ctx, wait); err != nil {
					return c.serviceFailure(req, start, status.FromContextError(err).Err())
				}
				continue // same attempt id: if the lease lapses, we take over
			}
			c.notify(idemkey.EventInProgress, req, time.Since(start), nil)
			return reject(InProgress, "Request in progress",
				"a request with this Idempotency-Key is still running; retry after it finishes",
				retryAfterSeconds(leaseEnd.Sub(now)))
		default:
			err := status.Errorf(codes.Internal, "Reserve answered outcome %v", r.GetOutcome())
			c.notify(idemkey.EventServiceError, req, time.Since(start), err)
			return reject(Internal, "Idempotency check failed",
				"the request was not run because its idempotency key could not be checked; the server's operators have been told", 0)
		}
	}
}

// serviceFailure turns a failed Reserve into a rejection, or into a bypass
// with fail-open when the service gave no answer.
func (c *Core) serviceFailure(req Request, start time.Time, err error) Decision {
	if IsNoAnswer(err) {
		if c.cfg.FailOpen {
			c.notify(idemkey.EventFailOpenRun, req, time.Since(start), err)
			return Decision{Action: Bypass}
		}
		c.notify(idemkey.EventUnavailable, req, time.Since(start), err)
		return reject(Unavailable, "Idempotency service unavailable",
			"the request was not run because its idempotency key could not be checked; retry with the same key", 0)
	}
	// The service's own message (an auth failure, the tenant cap, a full
	// disk) is for the app's operators: only the observer gets it.
	c.notify(idemkey.EventServiceError, req, time.Since(start), err)
	if status.Code(err) == codes.ResourceExhausted {
		return reject(Unavailable, "Idempotency service unavailable",
			"the request was not run because the idempotency service cannot take it now; retry later with the same key", 0)
	}
	return reject(Internal, "Idempotency check failed",
		"the request was not run because its idempotency key could not be checked; the server's operators have been told", 0)
}

func (c *Core) notify(kind idemkey.EventKind, req Request, elapsed time.Duration, err error) {
	if c.cfg.Observer == nil {
		return
	}
	c.cfg.Observer.OnEvent(idemkey.Event{Kind: kind, Tenant: req.Tenant, Route: req.Route, Elapsed: elapsed, ServiceErr: err})
}

func reject(reason Reason, title, detail string, retryAfter int64) Decision {
	return Decision{Action: Reject, Rejection: Rejection{Reason: reason, Title: title, Detail: detail, RetryAfterSeconds: retryAfter}}
}

// retryAfterSeconds is d in whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		return 1
	}
	return s
}

// sleep waits d, or until ctx ends (its error then).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
