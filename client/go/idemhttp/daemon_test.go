package idemhttp_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemhttp"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/internal/testenv"
)

// The middleware over a real idemkeyd: replay, reuse, in progress, release.
func TestWithDaemon(t *testing.T) {
	d := testenv.StartDaemon(t)
	keys, err := idemkey.Dial(context.Background(), d.Addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer keys.Close()
	a := &app{}
	srv := newServer(t, keys, a, idemhttp.WithRequireKey(), idemhttp.WithLease(5*time.Second))
	key := "daemon-" + idemkey.NewAttemptID()
	first := do(t, srv, "POST", "/v1/charges?x=1", key, `{"amount":7}`)
	second := do(t, srv, "POST", "/v1/charges?x=1", key, `{"amount":7}`)
	if first.status != 201 || second.status != 201 || first.body != second.body || second.header.Get("Idempotency-Replayed") != "true" || second.header.Get("Location") != first.header.Get("Location") {
		t.Fatalf("first %d %q, second %d %q %v", first.status, first.body, second.status, second.body, second.header)
	}
	wantProblem(t, do(t, srv, "POST", "/v1/charges?x=2", key, `{"amount":7}`), 422, "key-reused")
	wantProblem(t, do(t, srv, "POST", "/v1/charges", "", `{}`), 400, "missing-key")

	a.release = make(chan struct{})
	key2 := "daemon-" + idemkey.NewAttemptID()
	done := make(chan reply)
	go func() { done <- do(t, srv, "POST", "/v1/charges", key2, "{}") }()
	// Once the first holds the key, a retry gets 409.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: orgTenant, Key: key2})
		if err == nil && rec.GetRecord().GetState() == idemkeypb.State_STATE_IN_PROGRESS {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first request did not reserve within 10s: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r := do(t, srv, "POST", "/v1/charges", key2, "{}")
	wantProblem(t, r, http.StatusConflict, "in-progress")
	close(a.release)
	if r := <-done; r.status != 201 {
		t.Fatalf("first of key2: %d", r.status)
	}
	if a.runs != 2 {
		t.Fatalf("handler ran %d times, want 2", a.runs)
	}
}
