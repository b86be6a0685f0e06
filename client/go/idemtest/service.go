// Package idemtest is an in-memory idemkey key service for an app's unit
// tests: the same state machine as idemkeyd (docs/semantics.md, "Transition
// table": Reserve outcomes, leases, fencing tokens, expiry, the response
// size limit), no process to start. Use it as the middleware's backend:
//
//	keys := idemtest.New()
//	h := idemhttp.Require(keys)(mux)
//
// It also implements idemkeypb.KeyServiceServer, so a test can serve it
// over gRPC. Nothing outlives the Service.
package idemtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits and defaults, as idemkeyd's.
const (
	DefaultLease            = 30 * time.Second
	MinLease                = time.Second
	MaxLease                = time.Hour
	DefaultTTL              = 24 * time.Hour
	MinTTL                  = time.Minute
	MaxTTL                  = 30 * 24 * time.Hour
	DefaultMaxResponseBytes = 4 << 20
	maxAttemptIDBytes       = 128
)

// Service is an in-memory KeyService. It is safe for concurrent use.
type Service struct {
	idemkeypb.UnimplementedKeyServiceServer

	maxResponseBytes int
	maxKeyBytes      int

	mu        sync.Mutex
	offset    time.Duration // added to the wall clock (Advance)
	lastToken uint64
	failure   error
	tenants   map[string]map[string]*record
	calls     map[string]int
}

type record struct {
	state       idemkeypb.State
	fingerprint []byte
	token       uint64
	attemptID   string
	leaseEnd    time.Time
	created     time.Time
	expires     time.Time
	completed   time.Time
	ttl         time.Duration
	response    *idemkeypb.StoredResponse
}

// Option configures a Service.
type Option func(*Service)

// WithMaxResponseBytes sets the largest encoded StoredResponse a Complete
// may store (default 4 MiB, idemkeyd's --max_response_bytes).
func WithMaxResponseBytes(n int) Option { return func(s *Service) { s.maxResponseBytes = n } }

// WithMaxKeyBytes sets the longest key accepted (default 256).
func WithMaxKeyBytes(n int) Option { return func(s *Service) { s.maxKeyBytes = n } }

// New returns an empty Service. Tenants are created by their first Reserve.
func New(opts ...Option) *Service {
	s := &Service{
		maxResponseBytes: DefaultMaxResponseBytes,
		maxKeyBytes:      idemkey.DefaultMaxKeyBytes,
		tenants:          map[string]map[string]*record{},
		calls:            map[string]int{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Advance moves the service's clock forward by d: leases lapse and records
// expire without waiting.
func (s *Service) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Now is the service's clock: the wall clock plus every Advance.
func (s *Service) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// SetFailure makes every call fail with err (a gRPC status error, e.g.
// status.Error(codes.Unavailable, "down")) until SetFailure(nil).
func (s *Service) SetFailure(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = err
}

// Calls returns how many times the named method ("Reserve", "Complete",
// "Release", "Heartbeat", "Lookup") was called.
func (s *Service) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *Service) now() time.Time { return time.Now().Add(s.offset) }

// begin counts a call and returns the injected failure, if any. s.mu held.
func (s *Service) begin(method string) error {
	s.calls[method]++
	return s.failure
}

// live returns the live record of (tenant, key), forgetting an expired one.
// s.mu held.
func (s *Service) live(tenant, key string, now time.Time) *record {
	recs := s.tenants[tenant]
	r := recs[key]
	if r == nil {
		return nil
	}
	if !now.Before(r.expires) {
		delete(recs, key)
		return nil
	}
	return r
}

func (s *Service) checkTenantKey(tenant, key string) error {
	if err := idemkey.ValidateTenantName(tenant); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if err := idemkey.ValidateKey(key, s.maxKeyBytes); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

func resolve(field string, d *durationpb.Duration, def, min, max time.Duration) (time.Duration, error) {
	if d == nil || d.AsDuration() == 0 {
		return def, nil
	}
	v := d.AsDuration()
	if v < min || v > max {
		return 0, status.Errorf(codes.InvalidArgument, "%s of %v is out of range; it must be between %v and %v (or unset for the default of %v)", field, v, min, max, def)
	}
	return v, nil
}

// Reserve claims (tenant, key) for one attempt, or says why it cannot.
func (s *Service) Reserve(_ context.Context, req *idemkeypb.ReserveRequest) (*idemkeypb.ReserveResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin("Reserve"); err != nil {
		return nil, err
	}
	if err := s.checkTenantKey(req.GetTenant(), req.GetKey()); err != nil {
		return nil, err
	}
	if n := len(req.GetFingerprint()); n != 32 {
		return nil, status.Errorf(codes.InvalidArgument, "fingerprint is %d bytes; it must be the 32-byte SHA-256 of the request", n)
	}
	if a := req.GetAttemptId(); a == "" || len(a) > maxAttemptIDBytes || idemkey.ValidateKey(a, maxAttemptIDBytes) != nil {
		return nil, status.Errorf(codes.InvalidArgument, "attempt_id is not 1-%d bytes of printable ASCII (0x21-0x7E)", maxAttemptIDBytes)
	}
	lease, err := resolve("lease", req.GetLease(), DefaultLease, MinLease, MaxLease)
	if err != nil {
		return nil, err
	}
	ttl, err := resolve("ttl", req.GetTtl(), DefaultTTL, MinTTL, MaxTTL)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := s.live(req.GetTenant(), req.GetKey(), now)
	if r == nil {
		recs := s.tenants[req.GetTenant()]
		if recs == nil {
			recs = map[string]*record{}
			s.tenants[req.GetTenant()] = recs
		}
		s.lastToken++
		r = &record{
			state:       idemkeypb.State_STATE_IN_PROGRESS,
			fingerprint: append([]byte(nil), req.GetFingerprint()...),
			token:       s.lastToken,
			attemptID:   req.GetAttemptId(),
			leaseEnd:    now.Add(lease),
			created:     now,
			ttl:         ttl,
		}
		r.expires = later(now.Add(ttl), r.leaseEnd)
		recs[req.GetKey()] = r
		return s.owner(r), nil
	}
	if string(r.fingerprint) != string(req.GetFingerprint()) {
		return &idemkeypb.ReserveResponse{Outcome: idemkeypb.Outcome_OUTCOME_MISMATCH}, nil
	}
	if r.state == idemkeypb.State_STATE_COMPLETED {
		return &idemkeypb.ReserveResponse{
			Outcome:   idemkeypb.Outcome_OUTCOME_COMPLETED,
			Response:  proto.Clone(r.response).(*idemkeypb.StoredResponse),
			ExpiresAt: timestamppb.New(r.expires),
		}, nil
	}
	lapsed := !now.Before(r.leaseEnd)
	switch {
	case r.attemptID == req.GetAttemptId():
		if lapsed {
			r.leaseEnd = now.Add(lease)
			r.expires = later(r.expires, r.leaseEnd)
		}
		return s.owner(r), nil
	case !lapsed:
		return &idemkeypb.ReserveResponse{
			Outcome:        idemkeypb.Outcome_OUTCOME_IN_PROGRESS,
			LeaseExpiresAt: timestamppb.New(r.leaseEnd),
			ExpiresAt:      timestamppb.New(r.expires),
		}, nil
	default: // takeover
		s.lastToken++
		r.token = s.lastToken
		r.attemptID = req.GetAttemptId()
		r.leaseEnd = now.Add(lease)
		r.expires = later(r.expires, r.leaseEnd)
		return s.owner(r), nil
	}
}

func (s *Service) owner(r *record) *idemkeypb.ReserveResponse {
	return &idemkeypb.ReserveResponse{
		Outcome:        idemkeypb.Outcome_OUTCOME_OWNER,
		FencingToken:   r.token,
		LeaseExpiresAt: timestamppb.New(r.leaseEnd),
		ExpiresAt:      timestamppb.New(r.expires),
	}
}

// holder checks a Complete, Release or Heartbeat: absent (NOT_FOUND), wrong
// token (ABORTED), completed (FAILED_PRECONDITION unless completeRetry),
// lapsed lease (ABORTED). s.mu held.
func (s *Service) holder(tenant, key string, token uint64, now time.Time, completeRetry bool) (*record, error) {
	if err := s.checkTenantKey(tenant, key); err != nil {
		return nil, err
	}
	if s.tenants[tenant] == nil {
		return nil, status.Errorf(codes.NotFound, "tenant %q does not exist", tenant)
	}
	r := s.live(tenant, key, now)
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "no live record for key %q", key)
	}
	if r.token != token {
		return nil, status.Error(codes.Aborted, "another attempt holds this key; this token no longer holds its lease")
	}
	if r.state == idemkeypb.State_STATE_COMPLETED {
		if completeRetry {
			return r, nil
		}
		return nil, status.Error(codes.FailedPrecondition, "the record is completed")
	}
	if !now.Before(r.leaseEnd) {
		return nil, status.Error(codes.Aborted, "the lease of this token has lapsed")
	}
	return r, nil
}

// Complete stores the response of the attempt holding the lease.
func (s *Service) Complete(_ context.Context, req *idemkeypb.CompleteRequest) (*idemkeypb.CompleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin("Complete"); err != nil {
		return nil, err
	}
	now := s.now()
	r, err := s.holder(req.GetTenant(), req.GetKey(), req.GetFencingToken(), now, true)
	if err != nil {
		return nil, err
	}
	if r.state == idemkeypb.State_STATE_COMPLETED { // a retried Complete
		return &idemkeypb.CompleteResponse{ExpiresAt: timestamppb.New(r.expires)}, nil
	}
	resp := req.GetResponse()
	if resp == nil {
		resp = &idemkeypb.StoredResponse{}
	}
	if n := proto.Size(resp); n > s.maxResponseBytes {
		return nil, status.Errorf(codes.ResourceExhausted, "response is %d bytes encoded; at most %d may be stored (nothing was stored; the lease still holds)", n, s.maxResponseBytes)
	}
	r.state = idemkeypb.State_STATE_COMPLETED
	r.response = proto.Clone(resp).(*idemkeypb.StoredResponse)
	r.completed = now
	r.expires = now.Add(r.ttl)
	r.leaseEnd = time.Time{}
	return &idemkeypb.CompleteResponse{ExpiresAt: timestamppb.New(r.expires)}, nil
}

// Release forgets a reservation so that a retry runs the request.
func (s *Service) Release(_ context.Context, req *idemkeypb.ReleaseRequest) (*idemkeypb.ReleaseResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin("Release"); err != nil {
		return nil, err
	}
	if _, err := s.holder(req.GetTenant(), req.GetKey(), req.GetFencingToken(), s.now(), false); err != nil {
		return nil, err
	}
	delete(s.tenants[req.GetTenant()], req.GetKey())
	return &idemkeypb.ReleaseResponse{}, nil
}

// Heartbeat extends the lease of the attempt holding it.
func (s *Service) Heartbeat(_ context.Context, req *idemkeypb.HeartbeatRequest) (*idemkeypb.HeartbeatResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin("Heartbeat"); err != nil {
		return nil, err
	}
	lease, err := resolve("lease", req.GetLease(), DefaultLease, MinLease, MaxLease)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r, err := s.holder(req.GetTenant(), req.GetKey(), req.GetFencingToken(), now, false)
	if err != nil {
		return nil, err
	}
	r.leaseEnd = now.Add(lease)
	r.expires = later(r.expires, r.leaseEnd)
	return &idemkeypb.HeartbeatResponse{LeaseExpiresAt: timestamppb.New(r.leaseEnd)}, nil
}

// Lookup reads a record without changing it.
func (s *Service) Lookup(_ context.Context, req *idemkeypb.LookupRequest) (*idemkeypb.LookupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.begin("Lookup"); err != nil {
		return nil, err
	}
	if err := s.checkTenantKey(req.GetTenant(), req.GetKey()); err != nil {
		return nil, err
	}
	if s.tenants[req.GetTenant()] == nil {
		return nil, status.Errorf(codes.NotFound, "tenant %q does not exist", req.GetTenant())
	}
	r := s.live(req.GetTenant(), req.GetKey(), s.now())
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "no live record for key %q", req.GetKey())
	}
	rec := &idemkeypb.Record{
		Key:          req.GetKey(),
		State:        r.state,
		Fingerprint:  append([]byte(nil), r.fingerprint...),
		FencingToken: r.token,
		AttemptId:    r.attemptID,
		CreatedAt:    timestamppb.New(r.created),
		ExpiresAt:    timestamppb.New(r.expires),
		Ttl:          durationpb.New(r.ttl),
	}
	if r.state == idemkeypb.State_STATE_COMPLETED {
		rec.Response = proto.Clone(r.response).(*idemkeypb.StoredResponse)
		rec.CompletedAt = timestamppb.New(r.completed)
	} else {
		rec.LeaseExpiresAt = timestamppb.New(r.leaseEnd)
	}
	return &idemkeypb.LookupResponse{Record: rec}, nil
}

// Ping answers at once.
func (s *Service) Ping(context.Context, *idemkeypb.PingRequest) (*idemkeypb.PingResponse, error) {
	return &idemkeypb.PingResponse{}, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// String describes the service, for test failure messages.
func (s *Service) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, recs := range s.tenants {
		n += len(recs)
	}
	return fmt.Sprintf("idemtest.Service{%d tenants, %d records}", len(s.tenants), n)
}

var (
	_ idemkey.KeyService         = (*Service)(nil)
	_ idemkeypb.KeyServiceServer = (*Service)(nil)
)
