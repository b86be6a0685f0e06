package core

import "github.com/idemkey/idemkey/client/go/idemkeypb"

// Action is what the adapter does with a request.
type Action int

const (
	// Bypass: run the handler; nothing is recorded.
	Bypass Action = iota
	// Run: run the handler, then Execution.Finish (or Release).
	Run
	// Replay: send Decision.Replay, marked as replayed.
	Replay
	// Reject: send an error built from Decision.Rejection.
	Reject
)

// Reason is why a request was rejected.
type Reason int

const (
	// MissingTenant: HTTP 401, gRPC UNAUTHENTICATED.
	MissingTenant Reason = iota
	// MissingKey: HTTP 400, gRPC INVALID_ARGUMENT.
	MissingKey
	// MalformedKey: HTTP 400, gRPC INVALID_ARGUMENT.
	MalformedKey
	// InProgress: HTTP 409 + Retry-After, gRPC ABORTED.
	InProgress
	// Mismatch: HTTP 422, gRPC FAILED_PRECONDITION.
	Mismatch
	// Unavailable: HTTP 503, gRPC UNAVAILABLE.
	Unavailable
	// Internal: HTTP 500, gRPC INTERNAL.
	Internal
)

// Rejection is a refusal, written for the app's client: it never holds the
// key service's own message (the Observer gets that).
type Rejection struct {
	Reason Reason
	// Title is one line, e.g. "Request in progress".
	Title string
	// Detail says what happened and what to do.
	Detail string
	// RetryAfterSeconds is set for InProgress: at least 1.
	RetryAfterSeconds int64
}

// Decision is Begin's answer.
type Decision struct {
	Action Action
	// Execution is set for Run.
	Execution *Execution
	// Replay is set for Replay.
	Replay *idemkeypb.StoredResponse
	// Rejection is set for Reject.
	Rejection Rejection
}

// Request is what the core needs of an incoming request.
type Request struct {
	// Method is "POST", ... or "grpc".
	Method string
	// Route is the path (HTTP) or full method name (gRPC), matched against
	// the excluded routes.
	Route string
	// Target is what the fingerprint covers beside method and body: the
	// HTTP request target as sent; empty: Route.
	Target string
	// Tenant is the request's tenant; empty: none.
	Tenant string
	// Key is the Idempotency-Key, if HasKey.
	Key    string
	HasKey bool
	// Body is the raw body or the serialized request message.
	Body []byte
}
