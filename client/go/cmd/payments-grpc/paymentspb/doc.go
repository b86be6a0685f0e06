// Package paymentspb holds the Go code generated from
// proto/idemkey/examples/payments.proto: the messages and the Payments
// client and server of the example app payments-grpc. Regenerate it with
// generate.sh (or go generate); the test in this package fails when the
// committed files differ from a fresh generation.
package paymentspb

//go:generate ./generate.sh
