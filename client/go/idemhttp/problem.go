package idemhttp

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/idemkey/idemkey/client/go/internal/core"
)

// problem is an RFC 7807 body.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// Problem types (urn:idemkey:<type>) and statuses of the rejections.
var rejections = map[core.Reason]struct {
	status int
	kind   string
}{
	core.MissingTenant: {http.StatusUnauthorized, "missing-tenant"},
	core.MissingKey:    {http.StatusBadRequest, "missing-key"},
	core.MalformedKey:  {http.StatusBadRequest, "malformed-key"},
	core.InProgress:    {http.StatusConflict, "in-progress"},
	core.Mismatch:      {http.StatusUnprocessableEntity, "key-reused"},
	core.Unavailable:   {http.StatusServiceUnavailable, "unavailable"},
	core.Internal:      {http.StatusInternalServerError, "internal"},
}

// writeRejection answers r as application/problem+json.
func writeRejection(w http.ResponseWriter, r core.Rejection) {
	rej, ok := rejections[r.Reason]
	if !ok {
		rej = rejections[core.Internal]
	}
	if r.Reason == core.InProgress {
		w.Header().Set("Retry-After", strconv.FormatInt(r.RetryAfterSeconds, 10))
	}
	writeProblem(w, rej.status, rej.kind, r.Title, r.Detail)
}

func writeProblem(w http.ResponseWriter, status int, kind, title, detail string) {
	body, err := json.Marshal(problem{Type: "urn:idemkey:" + kind, Title: title, Status: status, Detail: detail})
	if err != nil { // strings and an int always marshal
		body = []byte(`{"type":"urn:idemkey:internal"}`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
