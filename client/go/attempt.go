package idemkey

import (
	"crypto/rand"
	"fmt"
)

// NewAttemptID returns a fresh random attempt id (a version-4 UUID) for
// ReserveRequest.AttemptId, or a random Idempotency-Key.
func NewAttemptID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(fmt.Sprintf("idemkey: reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
