package idemkey_test

import (
	"regexp"
	"strings"
	"testing"

	idemkey "github.com/idemkey/idemkey/client/go"
)

func TestValidateKey(t *testing.T) {
	for _, c := range []struct {
		key     string
		wantErr string
	}{
		{"order-42", ""},
		{"!~", ""},
		{strings.Repeat("k", 256), ""},
		{"", "key is 0 bytes; it must be 1-256 bytes of printable ASCII (0x21-0x7E)"},
		{strings.Repeat("k", 257), "key is 257 bytes; it must be 1-256 bytes of printable ASCII (0x21-0x7E)"},
		{"my key", `key "my key" has byte 0x20 at offset 2; it must be 1-256 bytes of printable ASCII (0x21-0x7E)`},
		{"caf\xc3\xa9", `key "caf\xc3\xa9" has byte 0xc3 at offset 3; it must be 1-256 bytes of printable ASCII (0x21-0x7E)`},
	} {
		err := idemkey.ValidateKey(c.key, 256)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.wantErr {
			t.Errorf("ValidateKey(%q) = %q, want %q", c.key, got, c.wantErr)
		}
	}
}

func TestValidateTenantName(t *testing.T) {
	for name, ok := range map[string]bool{
		"acme": true, "0b7e2c1a-4f3d": true, "a.b_c-d": true, strings.Repeat("a", 64): true,
		"": false, "Acme": false, "-acme": false, "acme corp": false, strings.Repeat("a", 65): false,
	} {
		if err := idemkey.ValidateTenantName(name); (err == nil) != ok {
			t.Errorf("ValidateTenantName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestNewAttemptID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := idemkey.NewAttemptID()
		if !uuid.MatchString(id) {
			t.Fatalf("%q is not a version-4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q drawn twice", id)
		}
		seen[id] = true
	}
}

func TestEventKindNames(t *testing.T) {
	if got := idemkey.EventInProgress.String(); got != "in_progress" {
		t.Fatalf("EventInProgress = %q", got)
	}
	if got := idemkey.EventLeaseLost.String(); got != "lease_lost" {
		t.Fatalf("EventLeaseLost = %q", got)
	}
}
