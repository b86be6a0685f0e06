// Package core is the framework-free idempotency middleware that idemhttp
// and idemgrpc adapt: it decides what to do with a request (bypass, run,
// replay, reject) and, for a run, keeps the lease alive and stores or
// releases the result. It owns the rules of docs/semantics.md, "Middleware";
// it is the Go counterpart of the C++ IdempotencyCore.
package core
