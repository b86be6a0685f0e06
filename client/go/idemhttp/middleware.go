package idemhttp

import (
	"bytes"
	"io"
	"net/http"
	"strings"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/internal/core"
)

// KeyHeader is the request header that carries the key.
const KeyHeader = "Idempotency-Key"

// Require returns middleware that gives the wrapped handler Idempotency-Key
// semantics, with the records kept by keys (an *idemkey.Client, or an
// idemtest.Service in tests). One Require serves any number of requests at
// once; create it once per route group.
func Require(keys idemkey.KeyService, opts ...Option) func(http.Handler) http.Handler {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	c := core.New(keys, cfg.core)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serve(c, &cfg, next, w, r)
		})
	}
}

func serve(c *core.Core, cfg *config, next http.Handler, w http.ResponseWriter, r *http.Request) {
	route := r.URL.Path
	var body []byte
	if c.Covers(r.Method, route) && r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "unreadable-body", "Request body could not be read",
				"the request body could not be read whole, so the request was not run; send it again")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	key, hasKey := "", false
	if values, ok := r.Header[http.CanonicalHeaderKey(KeyHeader)]; ok && len(values) > 0 {
		key, hasKey = values[0], true
	}
	d := c.Begin(r.Context(), core.Request{
		Method: r.Method,
		Route:  route,
		Target: target(r),
		Tenant: cfg.tenant(r),
		Key:    key,
		HasKey: hasKey,
		Body:   body,
	})
	switch d.Action {
	case core.Bypass:
		next.ServeHTTP(w, r)
	case core.Replay:
		writeReplay(w, d.Replay)
	case core.Reject:
		writeRejection(w, d.Rejection)
	case core.Run:
		run(d.Execution, cfg.storeAfterResponse, next, w, r)
	}
}

// run runs the handler for the attempt that owns the key, stores its
// response (or releases the key for a not-final status) and sends it; with
// storeAfter it sends it first. A handler that panics releases the key;
// the panic goes on.
func run(e *core.Execution, storeAfter bool, next http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := newRecorder()
	finished := false
	defer func() {
		if !finished {
			_ = e.Release(r.Context())
		}
	}()
	next.ServeHTTP(rec, r)
	finished = true
	if storeAfter {
		rec.sendNow(w)
		_ = e.Finish(r.Context(), rec.stored())
		return
	}
	// Stored before it is sent, so that a retry that follows the answer
	// finds it. It is sent whatever the key service says: a lost lease only
	// means that this answer is not the one stored.
	_ = e.Finish(r.Context(), rec.stored())
	rec.send(w)
}

// target is the request target as the client sent it, path and query
// string, not decoded (docs/semantics.md, "What HTTP and gRPC put in"): the
// request line's own bytes when the server kept them, else the URL's
// RequestURI (a request made in-process, or a target in absolute form).
func target(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}
