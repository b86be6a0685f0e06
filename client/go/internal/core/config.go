package core

import (
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
)

// Config is what a Core does; the adapters fill it from their options.
type Config struct {
	// CoveredMethods are the methods that go through the middleware.
	CoveredMethods map[string]bool
	// ExcludedRoutes are "METHOD ROUTE" pairs that bypass it.
	ExcludedRoutes map[string]bool
	// RequireKey rejects a covered request without a key.
	RequireKey bool
	// RequireTenant rejects a covered request without a tenant.
	RequireTenant bool
	// MaxKeyBytes is the longest key accepted.
	MaxKeyBytes int
	// Lease is asked for each attempt; HeartbeatInterval is how often a
	// running handler renews it.
	Lease             time.Duration
	HeartbeatInterval time.Duration
	// TTL is the retention of completed responses; zero: the service's.
	TTL time.Duration
	// NotFinal are statuses released instead of stored.
	NotFinal map[int32]bool
	// FailOpen runs the handler unprotected when the service gives no
	// answer.
	FailOpen bool
	// WaitForResult is how long a request finding the key in progress
	// polls (every WaitPollInterval) for the result.
	WaitForResult    time.Duration
	WaitPollInterval time.Duration
	// Observer is told of every decision and finish; nil: nobody.
	Observer idemkey.Observer
}

// Defaults returns the configuration shared by both adapters: a 30s lease
// renewed every 10s, keys of at most 256 bytes, waits polled every 50ms.
func Defaults() Config {
	return Config{
		CoveredMethods:    map[string]bool{},
		ExcludedRoutes:    map[string]bool{},
		MaxKeyBytes:       idemkey.DefaultMaxKeyBytes,
		Lease:             30 * time.Second,
		HeartbeatInterval: 10 * time.Second,
		NotFinal:          map[int32]bool{},
		WaitPollInterval:  50 * time.Millisecond,
	}
}
