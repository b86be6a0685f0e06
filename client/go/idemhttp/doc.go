// Package idemhttp is idemkey's net/http middleware: Idempotency-Key
// semantics for an app's handlers, with the records kept by idemkeyd.
//
//	keys, _ := idemkey.Dial(ctx, "127.0.0.1:50051")
//	protect := idemhttp.Require(keys, idemhttp.WithExclude("POST /v1/auth/login"))
//	http.ListenAndServe(":8080", auth(protect(mux)))
//
// POST, PUT, PATCH and DELETE requests that carry an Idempotency-Key run
// once per key: a retry with the same key, method, target (path and query)
// and body gets the stored status, headers and body back, with
// Idempotency-Replayed: true. The answers are those of docs/semantics.md,
// "What the app's clients see"; rejections are RFC 7807
// application/problem+json.
//
// The tenant of a request is TenantNameFor(the org id that the app's auth
// middleware put in the context with WithOrgID), or what WithTenantFunc
// says. A request without a tenant runs unprotected (or is refused with
// WithRequireTenant).
//
// The handler's response is buffered until it returns (it is stored before
// it is sent, or just after with WithStoreAfterResponse), so streaming
// handlers (http.Flusher) are not supported on covered routes.
package idemhttp
