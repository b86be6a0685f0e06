package idemtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"github.com/idemkey/idemkey/client/go/internal/servicetest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// The same suite as the real idemkeyd (idemkey's TestDaemonSuite).
func TestSuite(t *testing.T) {
	s := idemtest.New()
	servicetest.Run(t, servicetest.Harness{
		Keys: s,
		Lapse: func(t *testing.T, end time.Time) {
			if d := end.Sub(s.Now()); d >= 0 {
				s.Advance(d + time.Millisecond)
			}
		},
		MaxResponseBytes: idemtest.DefaultMaxResponseBytes,
	})
}

func reserve(t *testing.T, s *idemtest.Service, attempt string) *idemkeypb.ReserveResponse {
	t.Helper()
	fp := make([]byte, 32)
	r, err := s.Reserve(context.Background(), &idemkeypb.ReserveRequest{
		Tenant: "acme", Key: "k", Fingerprint: fp, AttemptId: attempt, Ttl: durationpb.New(time.Minute),
	})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	return r
}

func TestCompletedRecordExpiresAfterTTL(t *testing.T) {
	s := idemtest.New()
	a := reserve(t, s, "a")
	if _, err := s.Complete(context.Background(), &idemkeypb.CompleteRequest{
		Tenant: "acme", Key: "k", FencingToken: a.GetFencingToken(), Response: &idemkeypb.StoredResponse{StatusCode: 200},
	}); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	s.Advance(59 * time.Second)
	if got := reserve(t, s, "b").GetOutcome(); got != idemkeypb.Outcome_OUTCOME_COMPLETED {
		t.Fatalf("before the ttl: %v, want COMPLETED", got)
	}
	s.Advance(time.Second)
	if got := reserve(t, s, "c").GetOutcome(); got != idemkeypb.Outcome_OUTCOME_OWNER {
		t.Fatalf("after the ttl: %v, want OWNER (the record expired)", got)
	}
}

func TestInProgressRecordNeverExpiresBeforeItsLease(t *testing.T) {
	s := idemtest.New()
	fp := make([]byte, 32)
	r, err := s.Reserve(context.Background(), &idemkeypb.ReserveRequest{
		Tenant: "acme", Key: "k", Fingerprint: fp, AttemptId: "a", Ttl: durationpb.New(time.Minute), Lease: durationpb.New(time.Hour),
	})
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if !r.GetExpiresAt().AsTime().Equal(r.GetLeaseExpiresAt().AsTime()) {
		t.Fatalf("expires %v, want the lease end %v", r.GetExpiresAt().AsTime(), r.GetLeaseExpiresAt().AsTime())
	}
	s.Advance(2 * time.Minute)
	if got := reserve(t, s, "b").GetOutcome(); got != idemkeypb.Outcome_OUTCOME_IN_PROGRESS {
		t.Fatalf("%v, want IN_PROGRESS", got)
	}
}

func TestSetFailure(t *testing.T) {
	s := idemtest.New()
	s.SetFailure(status.Error(codes.Unavailable, "down"))
	_, err := s.Reserve(context.Background(), &idemkeypb.ReserveRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("Reserve: %v, want UNAVAILABLE", err)
	}
	s.SetFailure(nil)
	reserve(t, s, "a")
	if n := s.Calls("Reserve"); n != 2 {
		t.Fatalf("Calls(Reserve) = %d, want 2", n)
	}
}
