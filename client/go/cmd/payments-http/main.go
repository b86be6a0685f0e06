// Command payments-http is a small payments API protected by idemkey, the Go
// rewrite of client/cpp/examples/payments_http.cc. It follows the example
// app contract of tests/conformance/README.md.
//
// POST /v1/charges creates a charge; a client that retries with the same
// Idempotency-Key and body gets the first charge back instead of a second
// one. The tenant is the X-Org-Id header, mapped to a valid tenant name
// (idemkey.TenantNameFor: "Acme Corp" works too). SIGTERM or SIGINT stops it
// after the requests in flight.
//
//	idemkeyd --listen=127.0.0.1:50051 &
//	payments-http --listen_port=8080 --idemkey=127.0.0.1:50051 &
//	curl -i -X POST localhost:8080/v1/charges -H 'X-Org-Id: acme' \
//	     -H 'Idempotency-Key: 5f0c...' -d '{"amount":1000}'
//
// Routes:
//
//	POST /v1/charges       a charge (201), numbered by this process
//	GET  /v1/charges       the number of charges made (not protected: GET)
//	POST /v1/auth/login    excluded from the middleware by configuration
//
// `payments-http --help` lists every flag.
package main

func main() { app.Main() }
