package idemkey

import (
	"crypto/sha256"
	"encoding/binary"
)

// Fingerprint is the SHA-256 that identifies a request (docs/semantics.md,
// "The fingerprint"): each of method, target and body is hashed as its
// length (8 bytes, little-endian) followed by its bytes. Nothing is
// normalised. For HTTP, target is the request target as sent, path and
// query string (r.URL.RequestURI() for a server request); for gRPC, method
// is "grpc" and target the full method name.
func Fingerprint(method, target string, body []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(method), []byte(target), body} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
