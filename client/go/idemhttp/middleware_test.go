package idemhttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemhttp"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/idemtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// app is a handler that counts its runs and answers like payments-http.
type app struct {
	runs    int64
	release chan struct{} // when set, each run waits for it
	status  int
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.release != nil {
		<-a.release
	}
	if r.Header.Get("X-Fail") == "panic" {
		panic("handler failed")
	}
	body, _ := io.ReadAll(r.Body)
	n := atomic.AddInt64(&a.runs, 1)
	w.Header().Set("Location", fmt.Sprintf("/v1/charges/ch_%d", n))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Multi", "one")
	w.Header().Add("X-Multi", "two")
	status := a.status
	if status == 0 {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"id\":\"ch_%d\",\"request\":%s}\n", n, body)
}

// recordedEvents is an Observer that keeps every event.
type recordedEvents struct {
	mu     sync.Mutex
	events []idemkey.Event
}

func (o *recordedEvents) OnEvent(e idemkey.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

func (o *recordedEvents) kinds() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, e := range o.events {
		out = append(out, e.Kind.String())
	}
	return out
}

func orgHeader(r *http.Request) string { return idemkey.TenantNameFor(r.Header.Get("X-Org-Id")) }

func newServer(t *testing.T, keys idemkey.KeyService, h http.Handler, opts ...idemhttp.Option) *httptest.Server {
	t.Helper()
	opts = append([]idemhttp.Option{idemhttp.WithTenantFunc(orgHeader)}, opts...)
	srv := httptest.NewServer(idemhttp.Require(keys, opts...)(h))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, srv *httptest.Server, method, target, key, body string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("X-Org-Id", "Acme Corp")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// wantProblem checks an RFC 7807 rejection.
func wantProblem(t *testing.T, r reply, status int, kind string) map[string]interface{} {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var p map[string]interface{}
	if err := json.Unmarshal([]byte(r.body), &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if p["type"] != "urn:idemkey:"+kind || p["status"] != float64(status) || p["title"] == "" || p["detail"] == "" || len(p) != 4 {
		t.Fatalf("problem %v, want type urn:idemkey:%s, status %d, a title and a detail", p, kind, status)
	}
	return p
}

func TestReplay(t *testing.T) {
	keys := idemtest.New()
	a := &app{}
	obs := &recordedEvents{}
	srv := newServer(t, keys, a, idemhttp.WithObserver(obs))
	first := do(t, srv, "POST", "/v1/charges", "k1", `{"amount":1}`)
	second := do(t, srv, "POST", "/v1/charges", "k1", `{"amount":1}`)
	if first.status != 201 || second.status != 201 || first.body != second.body {
		t.Fatalf("first %d %q, second %d %q", first.status, first.body, second.status, second.body)
	}
	for _, h := range []string{"Location", "Content-Type"} {
		if first.header.Get(h) != second.header.Get(h) {
			t.Fatalf("%s: %q then %q", h, first.header.Get(h), second.header.Get(h))
		}
	}
	if got := second.header.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("replayed X-Multi %v", got)
	}
	if first.header.Get("Idempotency-Replayed") != "" || second.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("Idempotency-Replayed %q then %q", first.header.Get("Idempotency-Replayed"), second.header.Get("Idempotency-Replayed"))
	}
	if a.runs != 1 {
		t.Fatalf("handler ran %d times", a.runs)
	}
	if got := strings.Join(obs.kinds(), ","); got != "run,stored,replay" {
		t.Fatalf("events %s", got)
	}
	// Stored: the handler's headers, names sorted.
	rec, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: idemkey.TenantNameFor("Acme Corp"), Key: "k1"})
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	var names []string
	for _, h := range rec.GetRecord().GetResponse().GetHeaders() {
		names = append(names, h.GetName()+"="+string(h.GetValue()))
	}
	if got := strings.Join(names, " "); got != "Content-Type=application/json Location=/v1/charges/ch_1 X-Multi=one X-Multi=two" {
		t.Fatalf("stored headers %s", got)
	}
	// The fingerprint covers the target as sent, query included.
	want := idemkey.Fingerprint("POST", "/v1/charges", []byte(`{"amount":1}`))
	if string(rec.GetRecord().GetFingerprint()) != string(want[:]) {
		t.Fatalf("stored fingerprint %x, want %x", rec.GetRecord().GetFingerprint(), want)
	}
}

func TestMismatch(t *testing.T) {
	srv := newServer(t, idemtest.New(), &app{})
	do(t, srv, "POST", "/v1/charges?a=1", "k", `{"amount":1}`)
	wantProblem(t, do(t, srv, "POST", "/v1/charges?a=1", "k", `{"amount":2}`), 422, "key-reused")
	wantProblem(t, do(t, srv, "POST", "/v1/charges?a=2", "k", `{"amount":1}`), 422, "key-reused")
	wantProblem(t, do(t, srv, "PUT", "/v1/charges?a=1", "k", `{"amount":1}`), 422, "key-reused")
	if r := do(t, srv, "POST", "/v1/charges?a=1", "k", `{"amount":1}`); r.status != 201 || r.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("replay %d", r.status)
	}
}

func TestBypass(t *testing.T) {
	keys := idemtest.New()
	a := &app{}
	srv := newServer(t, keys, a, idemhttp.WithExclude("POST /v1/auth/login"), idemhttp.WithRequireKey())
	for _, c := range []struct{ method, target string }{
		{"GET", "/v1/charges"}, {"HEAD", "/v1/charges"}, {"OPTIONS", "/v1/charges"}, {"POST", "/v1/auth/login"}, {"POST", "/v1/auth/login?x=1"},
	} {
		if r := do(t, srv, c.method, c.target, "", ""); r.status != 201 {
			t.Fatalf("%s %s: %d", c.method, c.target, r.status)
		}
	}
	// No tenant, not required: runs unprotected even with a key.
	do(t, srv, "POST", "/v1/charges", "k", "{}", "X-Org-Id", "")
	do(t, srv, "POST", "/v1/charges", "k", "{}", "X-Org-Id", "")
	if a.runs != 7 || keys.Calls("Reserve") != 0 {
		t.Fatalf("runs %d, Reserve calls %d", a.runs, keys.Calls("Reserve"))
	}
	// No key, not required: unprotected too.
	srv2 := newServer(t, keys, a)
	do(t, srv2, "POST", "/v1/charges", "", "{}")
	if keys.Calls("Reserve") != 0 {
		t.Fatalf("Reserve called for a request without a key")
	}
}

func TestKeyAndTenantRejections(t *testing.T) {
	a := &app{}
	srv := newServer(t, idemtest.New(), a, idemhttp.WithRequireKey(), idemhttp.WithRequireTenant())
	wantProblem(t, do(t, srv, "POST", "/v1/charges", "", "{}"), 400, "missing-key")
	wantProblem(t, do(t, srv, "POST", "/v1/charges", strings.Repeat("k", 257), "{}"), 400, "malformed-key")
	wantProblem(t, do(t, srv, "POST", "/v1/charges", "a b", "{}"), 400, "malformed-key")
	wantProblem(t, do(t, srv, "POST", "/v1/charges", "k", "{}", "X-Org-Id", ""), 401, "missing-tenant")
	if a.runs != 0 {
		t.Fatalf("handler ran %d times", a.runs)
	}
	if r := do(t, srv, "POST", "/v1/charges", strings.Repeat("k", 256), "{}"); r.status != 201 {
		t.Fatalf("a 256-byte key: %d", r.status)
	}
}

func TestDefaultTenantFromContext(t *testing.T) {
	keys := idemtest.New()
	withOrg := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if id := r.Header.Get("X-Org-Id"); id != "" {
				r = r.WithContext(idemhttp.WithOrgID(r.Context(), id))
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(withOrg(idemhttp.Require(keys)(&app{})))
	defer srv.Close()
	do(t, srv, "POST", "/v1/charges", "k", "{}")
	if _, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: "acme-corp--a73cb4563ee2e72c", Key: "k"}); err != nil {
		t.Fatalf("no record under the mapped tenant: %v", err)
	}
	if id, ok := idemhttp.FromContext(idemhttp.WithOrgID(context.Background(), "x")); !ok || id != "x" {
		t.Fatalf("FromContext = %q, %v", id, ok)
	}
}

func TestInProgress(t *testing.T) {
	keys := idemtest.New()
	a := &app{release: make(chan struct{})}
	srv := newServer(t, keys, a, idemhttp.WithLease(10*time.Second))
	done := make(chan reply)
	go func() { done <- do(t, srv, "POST", "/v1/charges", "k", "{}") }()
	waitFor(t, func() bool { return keys.Calls("Reserve") == 1 })
	waitFor(t, func() bool {
		rec, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: orgTenant, Key: "k"})
		return err == nil && rec.GetRecord().GetState() == idemkeypb.State_STATE_IN_PROGRESS
	})
	r := do(t, srv, "POST", "/v1/charges", "k", "{}")
	wantProblem(t, r, 409, "in-progress")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 || s > 10 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	close(a.release)
	if first := <-done; first.status != 201 {
		t.Fatalf("first %d", first.status)
	}
}

var orgTenant = idemkey.TenantNameFor("Acme Corp")

func TestWaitForResult(t *testing.T) {
	keys := idemtest.New()
	a := &app{release: make(chan struct{})}
	srv := newServer(t, keys, a, idemhttp.WithWaitForResult(20*time.Second), idemhttp.WithWaitPollInterval(5*time.Millisecond))
	first := make(chan reply)
	go func() { first <- do(t, srv, "POST", "/v1/charges", "k", "{}") }()
	waitFor(t, func() bool { return keys.Calls("Reserve") == 1 })
	second := make(chan reply)
	go func() { second <- do(t, srv, "POST", "/v1/charges", "k", "{}") }()
	waitFor(t, func() bool { return keys.Calls("Reserve") >= 3 }) // the second is polling
	close(a.release)
	f, s := <-first, <-second
	if f.status != 201 || s.status != 201 || f.body != s.body || s.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("first %d %q, second %d %q %v", f.status, f.body, s.status, s.body, s.header)
	}
	if a.runs != 1 {
		t.Fatalf("handler ran %d times", a.runs)
	}
}

func TestServiceFailures(t *testing.T) {
	for _, c := range []struct {
		code     codes.Code
		failOpen bool
		status   int
		kind     string
		event    string
	}{
		{codes.Unavailable, false, 503, "unavailable", "unavailable"},
		{codes.DeadlineExceeded, false, 503, "unavailable", "unavailable"},
		{codes.Canceled, false, 503, "unavailable", "unavailable"},
		{codes.Unknown, false, 503, "unavailable", "unavailable"},
		{codes.Internal, false, 503, "unavailable", "unavailable"},
		{codes.Unimplemented, false, 503, "unavailable", "unavailable"},
		{codes.DataLoss, false, 503, "unavailable", "unavailable"},
		{codes.Unavailable, true, 201, "", "fail_open_run"},
		{codes.DataLoss, true, 201, "", "fail_open_run"},
		{codes.ResourceExhausted, false, 503, "unavailable", "service_error"},
		{codes.ResourceExhausted, true, 503, "unavailable", "service_error"},
		{codes.PermissionDenied, false, 500, "internal", "service_error"},
		{codes.Unauthenticated, true, 500, "internal", "service_error"},
		{codes.InvalidArgument, false, 500, "internal", "service_error"},
		{codes.NotFound, false, 500, "internal", "service_error"},
	} {
		t.Run(fmt.Sprintf("%v/failOpen=%v", c.code, c.failOpen), func(t *testing.T) {
			keys := idemtest.New()
			keys.SetFailure(status.Error(c.code, "secret service text"))
			a := &app{}
			obs := &recordedEvents{}
			opts := []idemhttp.Option{idemhttp.WithObserver(obs)}
			if c.failOpen {
				opts = append(opts, idemhttp.WithFailOpen())
			}
			srv := newServer(t, keys, a, opts...)
			r := do(t, srv, "POST", "/v1/charges", "k", "{}")
			if c.kind != "" {
				wantProblem(t, r, c.status, c.kind)
				if strings.Contains(r.body, "secret") {
					t.Fatalf("the service's message reached the client: %s", r.body)
				}
			} else if r.status != c.status {
				t.Fatalf("status %d, want %d", r.status, c.status)
			}
			if wantRuns := int64(0); c.failOpen && c.kind == "" {
				wantRuns = 1
				if a.runs != wantRuns {
					t.Fatalf("runs %d", a.runs)
				}
			} else if a.runs != 0 {
				t.Fatalf("handler ran")
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.events) != 1 || obs.events[0].Kind.String() != c.event || status.Code(obs.events[0].ServiceErr) != c.code {
				t.Fatalf("events %v, want one %s with the service's error", obs.events, c.event)
			}
		})
	}
}

func TestPanicReleasesKey(t *testing.T) {
	keys := idemtest.New()
	a := &app{}
	var panics int64
	recovering := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if p := recover(); p != nil {
					atomic.AddInt64(&panics, 1)
					http.Error(w, "boom", 500)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(recovering(idemhttp.Require(keys, idemhttp.WithTenantFunc(orgHeader))(a)))
	defer srv.Close()
	if r := do(t, srv, "POST", "/v1/charges", "k", "{}", "X-Fail", "panic"); r.status != 500 {
		t.Fatalf("status %d", r.status)
	}
	if panics != 1 {
		t.Fatalf("the panic did not go on")
	}
	if keys.Calls("Release") != 1 {
		t.Fatalf("Release calls %d", keys.Calls("Release"))
	}
	if r := do(t, srv, "POST", "/v1/charges", "k", "{}"); r.status != 201 || r.header.Get("Idempotency-Replayed") != "" {
		t.Fatalf("the retry did not run the handler: %d", r.status)
	}
}

func TestNotFinalStatusReleases(t *testing.T) {
	keys := idemtest.New()
	a := &app{status: 503}
	obs := &recordedEvents{}
	srv := newServer(t, keys, a, idemhttp.WithObserver(obs))
	if r := do(t, srv, "POST", "/v1/charges", "k", "{}"); r.status != 503 {
		t.Fatalf("status %d", r.status)
	}
	a.status = 0
	if r := do(t, srv, "POST", "/v1/charges", "k", "{}"); r.status != 201 || r.header.Get("Idempotency-Replayed") != "" {
		t.Fatalf("retry %d", r.status)
	}
	if got := strings.Join(obs.kinds(), ","); got != "run,released,run,stored" {
		t.Fatalf("events %s", got)
	}
	// Other errors are final: stored and replayed.
	a.status = 500
	do(t, srv, "POST", "/v1/charges", "k2", "{}")
	if r := do(t, srv, "POST", "/v1/charges", "k2", "{}"); r.status != 500 || r.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("a 500 was not replayed: %d", r.status)
	}
}

func TestBodyTooLargeIsStoredWithoutIt(t *testing.T) {
	keys := idemtest.New(idemtest.WithMaxResponseBytes(1024))
	obs := &recordedEvents{}
	big := strings.Repeat("x", 4096)
	var runs int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt64(&runs, 1)
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, big)
	})
	srv := newServer(t, keys, h, idemhttp.WithObserver(obs))
	if r := do(t, srv, "POST", "/x", "k", ""); r.status != 200 || r.body != big {
		t.Fatalf("first: %d, %d bytes", r.status, len(r.body))
	}
	r := do(t, srv, "POST", "/x", "k", "")
	if r.status != 200 || r.body != "" || r.header.Get("Idempotency-Body-Omitted") != "true" || r.header.Get("Idempotency-Replayed") != "true" || r.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("replay: %d %q %v", r.status, r.body, r.header)
	}
	if runs != 1 {
		t.Fatalf("runs %d", runs)
	}
	if got := strings.Join(obs.kinds(), ","); got != "run,body_omitted,replay" {
		t.Fatalf("events %s", got)
	}
}

func TestHeadersTooLargeStoresStatusAlone(t *testing.T) {
	keys := idemtest.New(idemtest.WithMaxResponseBytes(1024))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Huge", strings.Repeat("h", 2048))
		w.WriteHeader(202)
	})
	srv := newServer(t, keys, h)
	do(t, srv, "POST", "/x", "k", "")
	r := do(t, srv, "POST", "/x", "k", "")
	if r.status != 202 || r.header.Get("X-Huge") != "" || r.header.Get("Idempotency-Body-Omitted") != "true" {
		t.Fatalf("replay: %d %v", r.status, r.header)
	}
}

func TestHeartbeatsWhileHandlerRuns(t *testing.T) {
	keys := idemtest.New()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		waitFor(t, func() bool { return keys.Calls("Heartbeat") >= 2 })
		w.WriteHeader(200)
	})
	srv := newServer(t, keys, h, idemhttp.WithLease(3*time.Second), idemhttp.WithHeartbeatInterval(10*time.Millisecond))
	if r := do(t, srv, "POST", "/x", "k", ""); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	n := keys.Calls("Heartbeat")
	// Stopped with the handler: no beat after the Complete.
	rec, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: orgTenant, Key: "k"})
	if err != nil || rec.GetRecord().GetState() != idemkeypb.State_STATE_COMPLETED {
		t.Fatalf("Lookup: %v %v", rec, err)
	}
	if later := keys.Calls("Heartbeat"); later != n {
		t.Fatalf("heartbeats went on after Finish: %d then %d", n, later)
	}
}

func TestLostLeaseStillAnswers(t *testing.T) {
	keys := idemtest.New()
	obs := &recordedEvents{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys.Advance(time.Minute) // the lease lapses while the handler runs
		w.WriteHeader(201)
		io.WriteString(w, "done")
	})
	srv := newServer(t, keys, h, idemhttp.WithObserver(obs), idemhttp.WithLease(time.Second))
	if r := do(t, srv, "POST", "/x", "k", ""); r.status != 201 || r.body != "done" {
		t.Fatalf("status %d %q", r.status, r.body)
	}
	if got := strings.Join(obs.kinds(), ","); got != "run,lease_lost" {
		t.Fatalf("events %s", got)
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("condition not met within 10s")
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFingerprintCoversRawTarget(t *testing.T) {
	keys := idemtest.New()
	srv := newServer(t, keys, &app{})
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const target = "/v1/caf\xc3\xa9?b=2&a=%41+x"
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nX-Org-Id: acme\r\nIdempotency-Key: raw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", target)
	b, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(b), "HTTP/1.1 201") {
		t.Fatalf("answer %q", b)
	}
	rec, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: "acme", Key: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	want := idemkey.Fingerprint("POST", target, []byte("{}"))
	if string(rec.GetRecord().GetFingerprint()) != string(want[:]) {
		t.Fatalf("the fingerprint does not cover the target as sent")
	}
}

func TestWaitForResultTakesOverALapsedLease(t *testing.T) {
	keys := idemtest.New()
	a := &app{release: make(chan struct{})}
	obs := &recordedEvents{}
	srv := newServer(t, keys, a, idemhttp.WithLease(time.Second), idemhttp.WithWaitForResult(time.Minute),
		idemhttp.WithWaitPollInterval(5*time.Millisecond), idemhttp.WithObserver(obs))
	first := make(chan reply)
	go func() { first <- do(t, srv, "POST", "/v1/charges", "k", "{}") }()
	waitFor(t, func() bool { return keys.Calls("Reserve") == 1 })
	second := make(chan reply)
	go func() { second <- do(t, srv, "POST", "/v1/charges", "k", "{}") }()
	waitFor(t, func() bool { return keys.Calls("Reserve") >= 3 })
	keys.Advance(time.Hour) // the first attempt's lease lapses: the waiter takes over
	waitFor(t, func() bool {
		n := 0
		for _, k := range obs.kinds() {
			if k == "run" {
				n++
			}
		}
		return n == 2
	})
	close(a.release)
	f, s := <-first, <-second
	if f.status != 201 || s.status != 201 || s.header.Get("Idempotency-Replayed") != "" {
		t.Fatalf("first %d, second %d %v", f.status, s.status, s.header)
	}
	if a.runs != 2 {
		t.Fatalf("runs %d, want 2 (the waiter ran it after the takeover)", a.runs)
	}
	kinds := strings.Join(obs.kinds(), ",")
	if !strings.Contains(kinds, "lease_lost") || !strings.Contains(kinds, "stored") {
		t.Fatalf("events %s: want the first's Complete refused and the second's stored", kinds)
	}
}

// gatedCompletes is a key service whose Completes wait until open is
// closed, and say on entered that they were called.
type gatedCompletes struct {
	idemkey.KeyService
	entered chan struct{}
	open    chan struct{}
}

func (g *gatedCompletes) Complete(ctx context.Context, req *idemkeypb.CompleteRequest) (*idemkeypb.CompleteResponse, error) {
	g.entered <- struct{}{}
	<-g.open
	return g.KeyService.Complete(ctx, req)
}

func TestStoreAfterResponseSendsBeforeTheStoreLands(t *testing.T) {
	keys := &gatedCompletes{KeyService: idemtest.New(), entered: make(chan struct{}, 1), open: make(chan struct{})}
	srv := newServer(t, keys, &app{}, idemhttp.WithStoreAfterResponse())
	got := make(chan reply, 1)
	// On a connection of its own: the next request on a kept-alive one is
	// read only once the handler, and so the store, has returned.
	go func() {
		got <- do(t, srv, "POST", "/v1/charges", "after-1", `{"amount":1}`, "Connection", "close")
	}()
	<-keys.entered
	var first reply
	select {
	case first = <-got: // whole, with the Complete still waiting
	case <-time.After(10 * time.Second):
		close(keys.open)
		t.Fatal("no response while the Complete waited: it was stored first")
	}
	if first.status != 201 || !strings.Contains(first.body, `"amount":1`) {
		t.Fatalf("first %d %q", first.status, first.body)
	}
	// Until the store lands the key is held: never run again.
	if early := do(t, srv, "POST", "/v1/charges", "after-1", `{"amount":1}`); early.status != http.StatusConflict {
		t.Fatalf("retry during the store: %d %q, want 409", early.status, early.body)
	}
	close(keys.open)
	waitFor(t, func() bool {
		r, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: idemkey.TenantNameFor("Acme Corp"), Key: "after-1"})
		return err == nil && r.GetRecord().GetState() == idemkeypb.State_STATE_COMPLETED
	})
	replay := do(t, srv, "POST", "/v1/charges", "after-1", `{"amount":1}`)
	if replay.body != first.body || replay.header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("replay %d %q %v, want the first body replayed", replay.status, replay.body, replay.header)
	}
}

func TestStoreAfterResponseShutdownWaitsForTheStore(t *testing.T) {
	keys := &gatedCompletes{KeyService: idemtest.New(), entered: make(chan struct{}, 1), open: make(chan struct{})}
	h := idemhttp.Require(keys, idemhttp.WithTenantFunc(orgHeader), idemhttp.WithStoreAfterResponse())(&app{})
	srv := httptest.NewServer(h)
	first := do(t, srv, "POST", "/v1/charges", "shut-1", "{}", "Connection", "close")
	<-keys.entered // sent, and its store waiting
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("the server stopped before the store of a response it had sent")
	case <-time.After(300 * time.Millisecond):
	}
	close(keys.open)
	<-closed
	r, err := keys.Lookup(context.Background(), &idemkeypb.LookupRequest{Tenant: idemkey.TenantNameFor("Acme Corp"), Key: "shut-1"})
	if err != nil || r.GetRecord().GetState() != idemkeypb.State_STATE_COMPLETED || string(r.GetRecord().GetResponse().GetBody()) != first.body {
		t.Fatalf("after the stop: %v %v, want the sent response completed", r, err)
	}
}
