package idemkey

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

const (
	maxTenantNameBytes = 64
	tenantHashHex      = 16
	// Room for "--" and the hash within the name limit.
	maxReadable = maxTenantNameBytes - 2 - tenantHashHex
)

// ValidateTenantName reports whether name is a valid tenant name: 1-64
// characters of [a-z0-9._-], the first a letter or digit.
func ValidateTenantName(name string) error {
	const rule = "a tenant name is 1-64 characters of [a-z0-9._-] starting with a letter or digit"
	if len(name) == 0 || len(name) > maxTenantNameBytes {
		return fmt.Errorf("tenant name is %d bytes; %s", len(name), rule)
	}
	if !isLowerOrDigit(name[0]) {
		return fmt.Errorf("tenant name %s starts with a bad character; %s", excerpt(name), rule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLowerOrDigit(c) && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("tenant name %s has a bad character; %s", excerpt(name), rule)
		}
	}
	return nil
}

// TenantNameFor maps any organisation id to a valid tenant name, the same
// one every time (docs/semantics.md, "Tenants and auth"). A valid name that
// does not look mapped stays as it is ("acme"); any other id becomes its
// ASCII letters (lower-cased) and digits, every other run of bytes one '-'
// (at most 46 characters; "org" if nothing is left), then "--" and the
// first 16 hex digits of the id's SHA-256: "Acme Corp" is
// "acme-corp--a73cb4563ee2e72c". The empty id maps to "" (no tenant).
func TenantNameFor(orgID string) string {
	if orgID == "" {
		return ""
	}
	if ValidateTenantName(orgID) == nil && !looksMapped(orgID) {
		return orgID
	}
	readable := make([]byte, 0, maxReadable)
	for i := 0; i < len(orgID); i++ {
		c := orgID[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if isLowerOrDigit(c) {
			readable = append(readable, c)
		} else if len(readable) > 0 && readable[len(readable)-1] != '-' {
			readable = append(readable, '-')
		}
		if len(readable) == maxReadable {
			break
		}
	}
	for len(readable) > 0 && readable[len(readable)-1] == '-' {
		readable = readable[:len(readable)-1]
	}
	if len(readable) == 0 {
		readable = append(readable, "org"...)
	}
	sum := sha256.Sum256([]byte(orgID))
	return string(readable) + "--" + hex.EncodeToString(sum[:])[:tenantHashHex]
}

// looksMapped reports whether name ends like TenantNameFor's mapped names:
// "--" and 16 lower-case hex digits.
func looksMapped(name string) bool {
	if len(name) < tenantHashHex+2 {
		return false
	}
	tail := name[len(name)-tenantHashHex-2:]
	if tail[:2] != "--" {
		return false
	}
	for i := 2; i < len(tail); i++ {
		c := tail[i]
		if !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isLowerOrDigit(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}
