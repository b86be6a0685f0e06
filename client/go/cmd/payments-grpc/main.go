// Command payments-grpc is a small gRPC payments API protected by idemkey,
// the Go rewrite of client/cpp/examples/payments_grpc.cc. It serves
// idemkey.examples.Payments (proto/idemkey/examples/payments.proto, Go code
// in paymentspb) and follows the example app contract of
// tests/conformance/README.md, "payments-grpc".
//
// Payments/CreateCharge creates a charge; a client that retries with the
// same idempotency-key metadata and request gets the first charge back (with
// idempotency-replayed: true) instead of a second one. The tenant is the
// x-org-id metadata, mapped to a valid tenant name (idemkey.TenantNameFor);
// calls without it are not protected. SIGTERM or SIGINT stops it after the
// calls in flight.
//
//	idemkeyd --listen=127.0.0.1:50051 &
//	payments-grpc --listen_port=50052 --idemkey=127.0.0.1:50051 &
//	grpcurl -plaintext -import-path proto -proto idemkey/examples/payments.proto \
//	    -H 'x-org-id: acme' -H 'idempotency-key: 5f0c...' \
//	    -d '{"amount": 1000, "currency": "EUR"}' \
//	    127.0.0.1:50052 idemkey.examples.Payments/CreateCharge
//
// A charge of a non-positive amount answers INVALID_ARGUMENT, which is
// stored and replayed like any answer. --charge_delay makes each charge take
// that long (to see ABORTED and lease heartbeats). A call with metadata
// x-fail: throw panics after the delay, without charging: the interceptor
// releases the key and the call ends INTERNAL.
//
// `payments-grpc --help` lists every flag.
package main

func main() { app.Main() }
