// Package idemkey is the Go client of idemkeyd, the shared Idempotency-Key
// service, and the rules every idemkey middleware shares.
//
// A Client talks to idemkeyd's KeyService over gRPC, with a deadline per
// call and retries of UNAVAILABLE and of CANCELLED by a stopping idemkeyd,
// round-robin over the replicas its target names. Middleware takes any KeyService: a
// *Client in production, an idemtest.Service in an app's unit tests.
//
//	keys, err := idemkey.Dial(ctx, "idemkey.internal:50051")
//	if err != nil { ... }
//	defer keys.Close()
//	mux := http.NewServeMux()
//	http.ListenAndServe(":8080", idemhttp.Require(keys)(mux))
//
// Fingerprint and TenantNameFor implement docs/semantics.md ("The
// fingerprint", "Tenants and auth") byte for byte, so a retry served by an
// app written in another language is recognised as the same request.
package idemkey
