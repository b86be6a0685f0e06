package idemhttp

import (
	"bytes"
	"net/http"
	"net/textproto"
	"sort"
	"strconv"

	"github.com/idemkey/idemkey/client/go/idemkeypb"
)

// recorder buffers a handler's response so that it is stored before it is
// sent (or sent whole, then stored, with WithStoreAfterResponse).
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

// Header returns the header map the handler sets.
func (r *recorder) Header() http.Header { return r.header }

// WriteHeader records the status (the first call wins, as in net/http).
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

// Write buffers b (a 200 if no status was set).
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Headers that net/http manages per connection; never stored or replayed.
var unstored = map[string]bool{
	"Content-Length": true, "Connection": true, "Keep-Alive": true,
	"Transfer-Encoding": true, "Date": true, "Trailer": true,
}

// stored is the response as kept by idemkeyd: the headers the handler set,
// names sorted (the order cpp-httplib's adapter stores too), each name's
// values in the order they were added.
func (r *recorder) stored() *idemkeypb.StoredResponse {
	names := make([]string, 0, len(r.header))
	for name := range r.header {
		if !unstored[textproto.CanonicalMIMEHeaderKey(name)] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	resp := &idemkeypb.StoredResponse{StatusCode: int32(r.statusCode()), Body: r.body.Bytes()}
	for _, name := range names {
		for _, v := range r.header[name] {
			resp.Headers = append(resp.Headers, &idemkeypb.Header{Name: name, Value: []byte(v)})
		}
	}
	return resp
}

// send writes the recorded response to w, adding the handler's headers to
// those already set on w.
func (r *recorder) send(w http.ResponseWriter) {
	r.copyHeader(w)
	w.WriteHeader(r.statusCode())
	_, _ = w.Write(r.body.Bytes())
}

// sendNow is send, then a flush: with its Content-Length the client has the
// whole response before the handler returns.
func (r *recorder) sendNow(w http.ResponseWriter) {
	r.copyHeader(w)
	if s := r.statusCode(); s >= 200 && s != http.StatusNoContent && s != http.StatusNotModified {
		w.Header().Set("Content-Length", strconv.Itoa(r.body.Len()))
	}
	w.WriteHeader(r.statusCode())
	_, _ = w.Write(r.body.Bytes())
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) copyHeader(w http.ResponseWriter) {
	h := w.Header()
	for name, values := range r.header {
		h[name] = values
	}
}

// writeReplay answers with a stored response: its status, headers and body,
// plus Idempotency-Replayed: true (and Idempotency-Body-Omitted: true when
// the body was not stored).
func writeReplay(w http.ResponseWriter, resp *idemkeypb.StoredResponse) {
	h := w.Header()
	for name := range h {
		delete(h, name)
	}
	for _, hd := range resp.GetHeaders() {
		name := textproto.CanonicalMIMEHeaderKey(hd.GetName())
		if unstored[name] {
			continue
		}
		h[name] = append(h[name], string(hd.GetValue()))
	}
	h.Set("Idempotency-Replayed", "true")
	if resp.GetBodyOmitted() {
		h.Set("Idempotency-Body-Omitted", "true")
	}
	status := int(resp.GetStatusCode())
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.GetBody())
}
