package idemkey

import "time"

// EventKind says what the middleware did (docs/semantics.md, "Seeing what
// the middleware does").
type EventKind int

// The events, named as in docs/semantics.md.
const (
	// EventBypass: not covered, excluded, or no tenant or key (not
	// required): the handler ran unprotected.
	EventBypass EventKind = iota
	// EventRun: this attempt owns the key; the handler runs.
	EventRun
	// EventReplay: a stored response was replayed.
	EventReplay
	// EventInProgress: another attempt holds the key (409 / ABORTED).
	EventInProgress
	// EventMismatch: the key was used for another request (422).
	EventMismatch
	// EventRejectedKey: a missing or malformed key (400).
	EventRejectedKey
	// EventMissingTenant: a tenant is required and there was none (401).
	EventMissingTenant
	// EventUnavailable: no answer from idemkeyd (503).
	EventUnavailable
	// EventFailOpenRun: no answer, and the handler ran unprotected.
	EventFailOpenRun
	// EventServiceError: idemkeyd refused the check (503 or 500).
	EventServiceError
	// EventStored: the response was stored for replays.
	EventStored
	// EventBodyOmitted: too large; stored without its body (or headers).
	EventBodyOmitted
	// EventReleased: a not-final status, or the handler failed: released.
	EventReleased
	// EventFinishFailed: the Complete failed; the lease lapses.
	EventFinishFailed
	// EventLeaseLost: the Complete or a heartbeat found the lease gone.
	EventLeaseLost
)

var eventNames = [...]string{
	"bypass", "run", "replay", "in_progress", "mismatch", "rejected_key",
	"missing_tenant", "unavailable", "fail_open_run", "service_error",
	"stored", "body_omitted", "released", "finish_failed", "lease_lost",
}

// String returns the event's name as docs/semantics.md spells it
// ("in_progress").
func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return "unknown"
	}
	return eventNames[k]
}

// Event is one decision or finish of the middleware.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// Tenant is the request's tenant ("" when it had none).
	Tenant string
	// Route is "PATH" for HTTP or the full method name for gRPC; empty for
	// a lease_lost found by a heartbeat.
	Route string
	// Elapsed is the time spent in the key service for this step.
	Elapsed time.Duration
	// ServiceErr is the key service's error, when there was one: the only
	// place its message reaches the app (never the app's clients).
	ServiceErr error
}

// Observer is told of every decision and finish of the middleware. OnEvent
// runs on the request's goroutine (a heartbeat's lease_lost on the
// heartbeat's): it must be safe for concurrent use and quick.
type Observer interface {
	OnEvent(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// OnEvent calls f(e).
func (f ObserverFunc) OnEvent(e Event) { f(e) }
