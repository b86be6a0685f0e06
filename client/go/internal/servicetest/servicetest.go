// Package servicetest is the state-machine suite of docs/semantics.md
// ("Transition table") that both idemtest.Service and a real idemkeyd
// (through idemkey.Client) must pass.
package servicetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Harness is a key service under test.
type Harness struct {
	// Keys is the service.
	Keys idemkey.KeyService
	// Lapse returns once a lease that ends at end has lapsed for the
	// service (advancing a fake clock, or waiting for the real one).
	Lapse func(t *testing.T, end time.Time)
	// MaxResponseBytes is the service's limit on a stored response.
	MaxResponseBytes int
}

// Run runs every case against h.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		run  func(*testing.T, *fixture)
	}{
		{"OwnerThenInProgress", ownerThenInProgress},
		{"Mismatch", mismatch},
		{"CompleteThenReplay", completeThenReplay},
		{"ReleaseThenNewOwner", releaseThenNewOwner},
		{"HeartbeatAndCompletedChecks", heartbeatAndCompletedChecks},
		{"AbsentIsNotFound", absentIsNotFound},
		{"TakeoverAfterLapse", takeoverAfterLapse},
		{"SameAttemptAfterLapse", sameAttemptAfterLapse},
		{"TooLargeKeepsLease", tooLargeKeepsLease},
		{"InvalidArguments", invalidArguments},
	}
	for i, c := range cases {
		c := c
		tenant := fmt.Sprintf("suite-%d-%d", time.Now().UnixNano(), i)
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &fixture{t: t, h: h, tenant: tenant})
		})
	}
}

type fixture struct {
	t      *testing.T
	h      Harness
	tenant string
}

func fp(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func (f *fixture) ctx() context.Context { return context.Background() }

func (f *fixture) reserve(key, fingerprint, attempt string, lease time.Duration) *idemkeypb.ReserveResponse {
	f.t.Helper()
	r, err := f.h.Keys.Reserve(f.ctx(), &idemkeypb.ReserveRequest{
		Tenant: f.tenant, Key: key, Fingerprint: fp(fingerprint), AttemptId: attempt, Lease: durationpb.New(lease),
	})
	if err != nil {
		f.t.Fatalf("Reserve(%s, %s): %v", key, attempt, err)
	}
	return r
}

func (f *fixture) complete(key string, token uint64, resp *idemkeypb.StoredResponse) (*idemkeypb.CompleteResponse, error) {
	return f.h.Keys.Complete(f.ctx(), &idemkeypb.CompleteRequest{Tenant: f.tenant, Key: key, FencingToken: token, Response: resp})
}

func (f *fixture) release(key string, token uint64) error {
	_, err := f.h.Keys.Release(f.ctx(), &idemkeypb.ReleaseRequest{Tenant: f.tenant, Key: key, FencingToken: token})
	return err
}

func (f *fixture) heartbeat(key string, token uint64) (*idemkeypb.HeartbeatResponse, error) {
	return f.h.Keys.Heartbeat(f.ctx(), &idemkeypb.HeartbeatRequest{Tenant: f.tenant, Key: key, FencingToken: token, Lease: durationpb.New(30 * time.Second)})
}

func wantOutcome(t *testing.T, r *idemkeypb.ReserveResponse, want idemkeypb.Outcome) {
	t.Helper()
	if r.GetOutcome() != want {
		t.Fatalf("outcome %v, want %v", r.GetOutcome(), want)
	}
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

var sample = &idemkeypb.StoredResponse{
	StatusCode: 201,
	Headers: []*idemkeypb.Header{
		{Name: "Content-Type", Value: []byte("application/json")},
		{Name: "Location", Value: []byte("/v1/charges/ch_1")},
		{Name: "X-Bin", Value: []byte{0, 1, 0xff}},
	},
	Body: []byte(`{"id":"ch_1"}`),
}

func ownerThenInProgress(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", 30*time.Second)
	wantOutcome(t, a, idemkeypb.Outcome_OUTCOME_OWNER)
	if a.GetFencingToken() == 0 || a.GetLeaseExpiresAt() == nil || a.GetExpiresAt() == nil {
		t.Fatalf("OWNER answer lacks token or times: %v", a)
	}
	again := f.reserve("k", "req", "attempt-a", 30*time.Second)
	wantOutcome(t, again, idemkeypb.Outcome_OUTCOME_OWNER)
	if again.GetFencingToken() != a.GetFencingToken() {
		t.Fatalf("the same attempt got token %d, then %d", a.GetFencingToken(), again.GetFencingToken())
	}
	b := f.reserve("k", "req", "attempt-b", 30*time.Second)
	wantOutcome(t, b, idemkeypb.Outcome_OUTCOME_IN_PROGRESS)
	if b.GetFencingToken() != 0 {
		t.Fatalf("IN_PROGRESS carries a token: %v", b)
	}
	if !b.GetLeaseExpiresAt().AsTime().Equal(a.GetLeaseExpiresAt().AsTime()) {
		t.Fatalf("IN_PROGRESS lease end %v, want the holder's %v", b.GetLeaseExpiresAt().AsTime(), a.GetLeaseExpiresAt().AsTime())
	}
}

func mismatch(t *testing.T, f *fixture) {
	a := f.reserve("k", "req-1", "attempt-a", 30*time.Second)
	wantOutcome(t, a, idemkeypb.Outcome_OUTCOME_OWNER)
	wantOutcome(t, f.reserve("k", "req-2", "attempt-b", 30*time.Second), idemkeypb.Outcome_OUTCOME_MISMATCH)
	wantOutcome(t, f.reserve("k", "req-2", "attempt-a", 30*time.Second), idemkeypb.Outcome_OUTCOME_MISMATCH)
	if _, err := f.complete("k", a.GetFencingToken(), sample); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	wantOutcome(t, f.reserve("k", "req-2", "attempt-c", 30*time.Second), idemkeypb.Outcome_OUTCOME_MISMATCH)
}

func completeThenReplay(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", 30*time.Second)
	first, err := f.complete("k", a.GetFencingToken(), sample)
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	b := f.reserve("k", "req", "attempt-b", 30*time.Second)
	wantOutcome(t, b, idemkeypb.Outcome_OUTCOME_COMPLETED)
	if !proto.Equal(b.GetResponse(), sample) {
		t.Fatalf("replayed %v, want %v", b.GetResponse(), sample)
	}
	other := proto.Clone(sample).(*idemkeypb.StoredResponse)
	other.Body = []byte("other")
	retried, err := f.complete("k", a.GetFencingToken(), other)
	if err != nil {
		t.Fatalf("retried Complete: %v", err)
	}
	if !retried.GetExpiresAt().AsTime().Equal(first.GetExpiresAt().AsTime()) {
		t.Fatalf("retried Complete expires %v, first %v", retried.GetExpiresAt().AsTime(), first.GetExpiresAt().AsTime())
	}
	if got := f.reserve("k", "req", "attempt-c", 30*time.Second).GetResponse(); !bytes.Equal(got.GetBody(), sample.Body) {
		t.Fatalf("the retried Complete replaced the first response: %q", got.GetBody())
	}
	look, err := f.h.Keys.Lookup(f.ctx(), &idemkeypb.LookupRequest{Tenant: f.tenant, Key: "k"})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	if look.GetRecord().GetState() != idemkeypb.State_STATE_COMPLETED || !proto.Equal(look.GetRecord().GetResponse(), sample) {
		t.Fatalf("Lookup: %v", look.GetRecord())
	}
}

func releaseThenNewOwner(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", 30*time.Second)
	if err := f.release("k", a.GetFencingToken()); err != nil {
		t.Fatalf("Release: %v", err)
	}
	b := f.reserve("k", "req", "attempt-b", 30*time.Second)
	wantOutcome(t, b, idemkeypb.Outcome_OUTCOME_OWNER)
	if b.GetFencingToken() <= a.GetFencingToken() {
		t.Fatalf("new token %d not above the released %d", b.GetFencingToken(), a.GetFencingToken())
	}
	_, err := f.complete("k", a.GetFencingToken(), sample)
	wantCode(t, "Complete with the released token", err, codes.Aborted)
}

func heartbeatAndCompletedChecks(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", 2*time.Second)
	hb, err := f.heartbeat("k", a.GetFencingToken())
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if !hb.GetLeaseExpiresAt().AsTime().After(a.GetLeaseExpiresAt().AsTime()) {
		t.Fatalf("Heartbeat lease end %v not after %v", hb.GetLeaseExpiresAt().AsTime(), a.GetLeaseExpiresAt().AsTime())
	}
	_, err = f.heartbeat("k", a.GetFencingToken()+1000)
	wantCode(t, "Heartbeat with another token", err, codes.Aborted)
	if _, err := f.complete("k", a.GetFencingToken(), sample); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	_, err = f.heartbeat("k", a.GetFencingToken())
	wantCode(t, "Heartbeat of a completed record", err, codes.FailedPrecondition)
	wantCode(t, "Release of a completed record", f.release("k", a.GetFencingToken()), codes.FailedPrecondition)
	wantCode(t, "Release of a completed record with another token", f.release("k", a.GetFencingToken()+1000), codes.Aborted)
}

func absentIsNotFound(t *testing.T, f *fixture) {
	f.reserve("exists", "req", "attempt-a", 30*time.Second) // creates the tenant
	_, err := f.complete("absent", 1, sample)
	wantCode(t, "Complete of an absent key", err, codes.NotFound)
	wantCode(t, "Release of an absent key", f.release("absent", 1), codes.NotFound)
	_, err = f.heartbeat("absent", 1)
	wantCode(t, "Heartbeat of an absent key", err, codes.NotFound)
	_, err = f.h.Keys.Lookup(f.ctx(), &idemkeypb.LookupRequest{Tenant: f.tenant, Key: "absent"})
	wantCode(t, "Lookup of an absent key", err, codes.NotFound)
}

func takeoverAfterLapse(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", time.Second)
	f.h.Lapse(t, a.GetLeaseExpiresAt().AsTime())
	b := f.reserve("k", "req", "attempt-b", 30*time.Second)
	wantOutcome(t, b, idemkeypb.Outcome_OUTCOME_OWNER)
	if b.GetFencingToken() <= a.GetFencingToken() {
		t.Fatalf("takeover token %d not above %d", b.GetFencingToken(), a.GetFencingToken())
	}
	_, err := f.complete("k", a.GetFencingToken(), sample)
	wantCode(t, "Complete with the superseded token", err, codes.Aborted)
	_, err = f.heartbeat("k", a.GetFencingToken())
	wantCode(t, "Heartbeat with the superseded token", err, codes.Aborted)
	wantOutcome(t, f.reserve("k", "req", "attempt-a", 30*time.Second), idemkeypb.Outcome_OUTCOME_IN_PROGRESS)
	if _, err := f.complete("k", b.GetFencingToken(), sample); err != nil {
		t.Fatalf("Complete by the new holder: %v", err)
	}
}

func sameAttemptAfterLapse(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", time.Second)
	f.h.Lapse(t, a.GetLeaseExpiresAt().AsTime())
	_, err := f.heartbeat("k", a.GetFencingToken())
	wantCode(t, "Heartbeat of a lapsed lease", err, codes.Aborted)
	_, err = f.complete("k", a.GetFencingToken(), sample)
	wantCode(t, "Complete of a lapsed lease", err, codes.Aborted)
	again := f.reserve("k", "req", "attempt-a", 30*time.Second)
	wantOutcome(t, again, idemkeypb.Outcome_OUTCOME_OWNER)
	if again.GetFencingToken() != a.GetFencingToken() {
		t.Fatalf("the same attempt after its lapse got token %d, want %d", again.GetFencingToken(), a.GetFencingToken())
	}
	if _, err := f.complete("k", again.GetFencingToken(), sample); err != nil {
		t.Fatalf("Complete after renewing: %v", err)
	}
}

func tooLargeKeepsLease(t *testing.T, f *fixture) {
	a := f.reserve("k", "req", "attempt-a", 30*time.Second)
	big := &idemkeypb.StoredResponse{StatusCode: 200, Body: make([]byte, f.h.MaxResponseBytes+1)}
	_, err := f.complete("k", a.GetFencingToken(), big)
	wantCode(t, "Complete of an oversized response", err, codes.ResourceExhausted)
	wantOutcome(t, f.reserve("k", "req", "attempt-b", 30*time.Second), idemkeypb.Outcome_OUTCOME_IN_PROGRESS)
	small := &idemkeypb.StoredResponse{StatusCode: 200, BodyOmitted: true}
	if _, err := f.complete("k", a.GetFencingToken(), small); err != nil {
		t.Fatalf("Complete without the body: %v", err)
	}
	r := f.reserve("k", "req", "attempt-c", 30*time.Second)
	wantOutcome(t, r, idemkeypb.Outcome_OUTCOME_COMPLETED)
	if !r.GetResponse().GetBodyOmitted() {
		t.Fatalf("replay lost body_omitted: %v", r.GetResponse())
	}
}

func invalidArguments(t *testing.T, f *fixture) {
	good := func() *idemkeypb.ReserveRequest {
		return &idemkeypb.ReserveRequest{Tenant: f.tenant, Key: "k", Fingerprint: fp("x"), AttemptId: "a"}
	}
	for name, edit := range map[string]func(*idemkeypb.ReserveRequest){
		"upper-case tenant": func(r *idemkeypb.ReserveRequest) { r.Tenant = "Acme" },
		"empty tenant":      func(r *idemkeypb.ReserveRequest) { r.Tenant = "" },
		"key with a space":  func(r *idemkeypb.ReserveRequest) { r.Key = "a b" },
		"key of 257 bytes":  func(r *idemkeypb.ReserveRequest) { r.Key = string(bytes.Repeat([]byte("k"), 257)) },
		"short fingerprint": func(r *idemkeypb.ReserveRequest) { r.Fingerprint = r.Fingerprint[:31] },
		"empty attempt id":  func(r *idemkeypb.ReserveRequest) { r.AttemptId = "" },
		"lease under 1s":    func(r *idemkeypb.ReserveRequest) { r.Lease = durationpb.New(500 * time.Millisecond) },
		"ttl under 1m":      func(r *idemkeypb.ReserveRequest) { r.Ttl = durationpb.New(time.Second) },
	} {
		req := good()
		edit(req)
		_, err := f.h.Keys.Reserve(f.ctx(), req)
		wantCode(t, name, err, codes.InvalidArgument)
	}
}
