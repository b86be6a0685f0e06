package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/idemkey/idemkey/client/go/idemtest"
	"github.com/idemkey/idemkey/client/go/internal/exampleapp"
)

func post(t *testing.T, srv *httptest.Server, path, key string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(`{"amount":5}`))
	req.Header.Set("X-Org-Id", "Acme Corp")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutes(t *testing.T) {
	keys := idemtest.New()
	srv := httptest.NewServer(newHandler(keys, exampleapp.Options{Lease: 30 * time.Second}, io.Discard))
	defer srv.Close()
	resp, body := post(t, srv, "/v1/charges", "k")
	if resp.StatusCode != 201 || body != "{\"id\":\"ch_1\",\"request\":{\"amount\":5}}\n" || resp.Header.Get("Location") != "/v1/charges/ch_1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("charge: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, body2 := post(t, srv, "/v1/charges", "k")
	if resp.StatusCode != 201 || body2 != body || resp.Header.Get("Idempotency-Replayed") != "true" {
		t.Fatalf("replay: %d %q", resp.StatusCode, body2)
	}
	if resp, _ := post(t, srv, "/v1/charges", ""); resp.StatusCode != 400 {
		t.Fatalf("no key: %d", resp.StatusCode)
	}
	if resp, body := post(t, srv, "/v1/auth/login", ""); resp.StatusCode != 200 || body != "{\"token\":\"example\"}\n" {
		t.Fatalf("login: %d %q", resp.StatusCode, body)
	}
	if resp, _ := post(t, srv, "/v1/charges", "k2", "X-Fail", "throw"); resp.StatusCode != 500 {
		t.Fatalf("throw: %d", resp.StatusCode)
	}
	if resp, body := post(t, srv, "/v1/charges", "k2"); resp.StatusCode != 201 || !strings.Contains(body, "ch_2") {
		t.Fatalf("retry after throw: %d %q", resp.StatusCode, body)
	}
	get, err := srv.Client().Get(srv.URL + "/v1/charges")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if get.StatusCode != 200 || string(b) != "{\"charges\":2}\n" {
		t.Fatalf("GET: %d %q", get.StatusCode, b)
	}
}
