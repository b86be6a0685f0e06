package idemkey_test

import (
	"context"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"github.com/idemkey/idemkey/client/go/internal/servicetest"
	"github.com/idemkey/idemkey/client/go/internal/testenv"
)

// The state-machine suite against a real idemkeyd, through Client: the same
// cases idemtest.Service passes.
func TestDaemonSuite(t *testing.T) {
	d := testenv.StartDaemon(t)
	c := dial(t, d.Addr)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	servicetest.Run(t, servicetest.Harness{
		Keys: c,
		// The daemon runs on this machine's clock: wait until the lease's
		// end has passed.
		Lapse: func(t *testing.T, end time.Time) {
			deadline := time.Now().Add(10 * time.Second)
			for !time.Now().After(end.Add(20 * time.Millisecond)) {
				if time.Now().After(deadline) {
					t.Fatalf("lease end %v is not within 10s", end)
				}
				time.Sleep(20 * time.Millisecond)
			}
		},
		MaxResponseBytes: idemtest.DefaultMaxResponseBytes,
	})
}

func TestDaemonAdminCall(t *testing.T) {
	d := testenv.StartDaemon(t)
	c := dial(t, d.Addr)
	tenants, err := c.Admin().ListTenants(context.Background(), &idemkeypb.ListTenantsRequest{})
	if err != nil {
		t.Fatalf("ListTenants: %v", err)
	}
	_ = tenants
	_ = idemkey.DefaultCallTimeout
}
