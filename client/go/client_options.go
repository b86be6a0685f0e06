package idemkey

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Defaults of a Client, as in the C++ client (docs/semantics.md, "Key
// service errors"; docs/operations.md, "Restarts").
const (
	DefaultCallTimeout             = 2 * time.Second
	DefaultMaxAttempts             = 4
	DefaultInitialBackoff          = 50 * time.Millisecond
	DefaultMaxBackoff              = time.Second
	DefaultReconnectInitialBackoff = 100 * time.Millisecond
	DefaultReconnectMaxBackoff     = 500 * time.Millisecond
	DefaultMinConnectTimeout       = time.Second
)

type clientConfig struct {
	callTimeout       time.Duration
	maxAttempts       int
	initialBackoff    time.Duration
	maxBackoff        time.Duration
	reconnectInitial  time.Duration
	reconnectMax      time.Duration
	minConnectTimeout time.Duration
	creds             credentials.TransportCredentials
	token             func() string
	dialOptions       []grpc.DialOption
}

func defaultClientConfig() clientConfig {
	return clientConfig{
		callTimeout:       DefaultCallTimeout,
		maxAttempts:       DefaultMaxAttempts,
		initialBackoff:    DefaultInitialBackoff,
		maxBackoff:        DefaultMaxBackoff,
		reconnectInitial:  DefaultReconnectInitialBackoff,
		reconnectMax:      DefaultReconnectMaxBackoff,
		minConnectTimeout: DefaultMinConnectTimeout,
	}
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

// WithCallTimeout sets the deadline of one attempt of one call (default 2s).
// A caller's context deadline, when earlier, wins.
func WithCallTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.callTimeout = d }
}

// WithRetries sets the attempts per call, the first included, while the
// answer is UNAVAILABLE or CANCELLED by idemkeyd (default 4), and the backoff before the second
// attempt, doubling up to max (defaults 50ms and 1s). Each wait is drawn
// uniformly from [backoff/2, backoff].
func WithRetries(maxAttempts int, initial, max time.Duration) ClientOption {
	return func(c *clientConfig) {
		c.maxAttempts = maxAttempts
		c.initialBackoff = initial
		c.maxBackoff = max
	}
}

// WithReconnect sets how the connection comes back after idemkeyd went
// away: the first attempt after initial, later ones up to max, each allowed
// minConnectTimeout (defaults 100ms, 500ms, 1s; gRPC's own are 1s, 120s,
// 20s, which keep an app failing for seconds after idemkeyd is back).
func WithReconnect(initial, max, minConnectTimeout time.Duration) ClientOption {
	return func(c *clientConfig) {
		c.reconnectInitial = initial
		c.reconnectMax = max
		c.minConnectTimeout = minConnectTimeout
	}
}

// WithTransportCredentials talks TLS (or whatever creds provide) to
// idemkeyd; plaintext without it. See TLSCredentialsFromFiles.
func WithTransportCredentials(creds credentials.TransportCredentials) ClientOption {
	return func(c *clientConfig) { c.creds = creds }
}

// WithToken sends "authorization: Bearer token" on every call (idemkeyd
// with --tokens_file). An empty token sends nothing.
func WithToken(token string) ClientOption {
	return func(c *clientConfig) { c.token = func() string { return token } }
}

// WithTokenProvider asks provider for the token before every call, so that
// a rotated token is used without a restart (see TokenFromFile). It must be
// safe for concurrent use and quick.
func WithTokenProvider(provider func() string) ClientOption {
	return func(c *clientConfig) { c.token = provider }
}

// WithDialOptions adds gRPC dial options (after the client's own).
func WithDialOptions(opts ...grpc.DialOption) ClientOption {
	return func(c *clientConfig) { c.dialOptions = append(c.dialOptions, opts...) }
}
