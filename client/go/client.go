package idemkey

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"time"

	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Client is the typed client of idemkeyd's KeyService. One Client holds one
// gRPC connection; it is safe for concurrent use and meant to be created
// once per process and shared by every handler.
//
// Every call has a deadline (WithCallTimeout), and calls answered
// UNAVAILABLE (idemkeyd restarting, a connection reset) or CANCELLED by
// idemkeyd (a stopping idemkeyd cancels the calls it had received but not
// started) are retried with jittered exponential backoff, on another
// replica when the target names several. That is safe for every call: a
// retried Reserve carries the same attempt_id; a retried Complete is OK; a
// Heartbeat extends the lease again. A CANCELLED the client caused (the
// caller's context ended, or Close) is not retried. Errors are gRPC status
// errors with idemkeyd's code and message.
type Client struct {
	cfg   clientConfig
	conn  *grpc.ClientConn
	keys  idemkeypb.KeyServiceClient
	admin idemkeypb.AdminServiceClient

	mu  sync.Mutex // guards rng
	rng *rand.Rand
}

// Dial returns a Client of the idemkeyd at address: "host:port", or a
// target naming several replicas (over the PostgreSQL backend), such as
// "dns:///idemkey.internal:50051" resolving to each (a Kubernetes headless
// Service). Calls go round-robin over the replicas that are up. gRPC-Go has
// no "ipv4:" address-list target: for a fixed list, pass a resolver with
// WithDialOptions(grpc.WithResolvers(...)) (see resolver/manual). Dial does
// not wait for the connection: calls made while it is not up fail
// UNAVAILABLE (after the retries) rather than block.
func Dial(ctx context.Context, address string, opts ...ClientOption) (*Client, error) {
	cfg := defaultClientConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxAttempts < 1 {
		cfg.maxAttempts = 1
	}
	dial := []grpc.DialOption{
		// This client retries UNAVAILABLE and CANCELLED itself; gRPC's
		// retries would multiply the attempts.
		grpc.WithDisableRetry(),
		// Every address the target resolves to (several replicas over
		// PostgreSQL) takes calls in turn; one that is draining or gone
		// takes none, and a call it failed is retried on another.
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  cfg.reconnectInitial,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   cfg.reconnectMax,
			},
			MinConnectTimeout: cfg.minConnectTimeout,
		}),
		// Stored responses reach 4 MiB and more; Lookup returns them whole.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32)),
	}
	if cfg.creds != nil {
		dial = append(dial, grpc.WithTransportCredentials(cfg.creds))
	} else {
		dial = append(dial, grpc.WithInsecure())
	}
	dial = append(dial, cfg.dialOptions...)
	conn, err := grpc.DialContext(ctx, address, dial...)
	if err != nil {
		return nil, fmt.Errorf("idemkey: dialing %s: %w", address, err)
	}
	return &Client{
		cfg:   cfg,
		conn:  conn,
		keys:  idemkeypb.NewKeyServiceClient(conn),
		admin: idemkeypb.NewAdminServiceClient(conn),
		rng:   rand.New(rand.NewSource(time.Now().UnixNano())),
	}, nil
}

// Close closes the connection. Calls in flight fail.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("idemkey: closing the connection: %w", err)
	}
	return nil
}

// Conn returns the underlying connection, for other services of idemkeyd
// (grpc.health.v1). Calls made on it directly get neither the bearer token
// nor the retries.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Reserve claims (tenant, key) for one attempt, or says why it cannot.
func (c *Client) Reserve(ctx context.Context, req *idemkeypb.ReserveRequest) (*idemkeypb.ReserveResponse, error) {
	var resp *idemkeypb.ReserveResponse
	err := c.withRetries(ctx, func(ctx context.Context) (err error) {
		resp, err = c.keys.Reserve(ctx, req)
		return err
	})
	return resp, err
}

// Complete stores the response of the attempt holding the lease.
func (c *Client) Complete(ctx context.Context, req *idemkeypb.CompleteRequest) (*idemkeypb.CompleteResponse, error) {
	var resp *idemkeypb.CompleteResponse
	err := c.withRetries(ctx, func(ctx context.Context) (err error) {
		resp, err = c.keys.Complete(ctx, req)
		return err
	})
	return resp, err
}

// Release forgets a reservation so that a retry runs the request.
func (c *Client) Release(ctx context.Context, req *idemkeypb.ReleaseRequest) (*idemkeypb.ReleaseResponse, error) {
	var resp *idemkeypb.ReleaseResponse
	err := c.withRetries(ctx, func(ctx context.Context) (err error) {
		resp, err = c.keys.Release(ctx, req)
		return err
	})
	return resp, err
}

// Heartbeat extends the lease of the attempt holding it.
func (c *Client) Heartbeat(ctx context.Context, req *idemkeypb.HeartbeatRequest) (*idemkeypb.HeartbeatResponse, error) {
	var resp *idemkeypb.HeartbeatResponse
	err := c.withRetries(ctx, func(ctx context.Context) (err error) {
		resp, err = c.keys.Heartbeat(ctx, req)
		return err
	})
	return resp, err
}

// Lookup reads a record without changing it.
func (c *Client) Lookup(ctx context.Context, req *idemkeypb.LookupRequest) (*idemkeypb.LookupResponse, error) {
	var resp *idemkeypb.LookupResponse
	err := c.withRetries(ctx, func(ctx context.Context) (err error) {
		resp, err = c.keys.Lookup(ctx, req)
		return err
	})
	return resp, err
}

// Ping checks that idemkeyd answers, without touching its store.
func (c *Client) Ping(ctx context.Context) error {
	return c.withRetries(ctx, func(ctx context.Context) error {
		_, err := c.keys.Ping(ctx, &idemkeypb.PingRequest{})
		return err
	})
}

// Admin returns an AdminService client over the same connection whose
// calls carry the client's bearer token (an admin token is needed when
// idemkeyd checks tokens). Its calls are not retried.
func (c *Client) Admin() idemkeypb.AdminServiceClient { return adminClient{c} }

// withRetries runs call with a deadline per attempt and the bearer token,
// again while it answers UNAVAILABLE or a CANCELLED the client did not
// cause (see retryable), up to the configured attempts.
func (c *Client) withRetries(ctx context.Context, call func(context.Context) error) error {
	ctx, err := c.authorize(ctx)
	if err != nil {
		return err
	}
	backoff := c.cfg.initialBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, c.cfg.callTimeout)
		err := call(actx)
		cancel()
		if !c.retryable(ctx, err) || attempt >= c.cfg.maxAttempts {
			return err
		}
		wait := time.Duration(float64(backoff) * (0.5 + 0.5*c.uniform()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		if backoff *= 2; backoff > c.cfg.maxBackoff {
			backoff = c.cfg.maxBackoff
		}
	}
}

// retryable says whether err, the answer to an attempt of a call made with
// ctx, is worth another attempt. UNAVAILABLE is. CANCELLED is when it came
// from idemkeyd: a stopping idemkeyd cancels the calls it had received but
// not started, and every call is safe to retry. It is not when the client
// caused it: ctx ended (the caller gave up), or the connection was closed.
func (c *Client) retryable(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.Canceled:
		return ctx.Err() == nil && c.conn.GetState() != connectivity.Shutdown
	default:
		return false
	}
}

// authorize adds the bearer token, if any, to ctx's outgoing metadata.
func (c *Client) authorize(ctx context.Context) (context.Context, error) {
	if c.cfg.token == nil {
		return ctx, nil
	}
	token := c.cfg.token()
	if token == "" {
		return ctx, nil
	}
	for i := 0; i < len(token); i++ {
		if token[i] < 0x20 || token[i] >= 0x7f {
			return nil, status.Error(codes.InvalidArgument,
				"the bearer token has a character a header cannot carry (a newline?); tokens are printable ASCII")
		}
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), nil
}

func (c *Client) uniform() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rng.Float64()
}
