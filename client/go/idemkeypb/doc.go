// Package idemkeypb holds the Go code generated from proto/idemkey/v1: the
// messages and the KeyService and AdminService clients and servers of
// idemkeyd. Regenerate it with generate.sh (or go generate); the test in this
// package fails when the committed files differ from a fresh generation.
package idemkeypb

//go:generate ./generate.sh
