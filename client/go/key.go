package idemkey

import "fmt"

// DefaultMaxKeyBytes is the longest Idempotency-Key idemkeyd accepts by
// default (its --max_key_bytes).
const DefaultMaxKeyBytes = 256

// ValidateKey reports whether key is a valid Idempotency-Key: 1 to maxBytes
// bytes, each printable ASCII (0x21-0x7E, so no space). The error names the
// rule broken, in the words of idemkeyd's own messages.
func ValidateKey(key string, maxBytes int) error {
	rule := fmt.Sprintf("it must be 1-%d bytes of printable ASCII (0x21-0x7E)", maxBytes)
	if len(key) < 1 || len(key) > maxBytes {
		return fmt.Errorf("key is %d bytes; %s", len(key), rule)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("key %s has byte 0x%02x at offset %d; %s", excerpt(key), c, i, rule)
		}
	}
	return nil
}

// excerpt quotes at most 40 bytes of value, escaping what is not printable,
// so that an error message stays short and safe to log.
func excerpt(value string) string {
	const max = 40
	out := []byte{'"'}
	for i := 0; i < len(value) && i < max; i++ {
		c := value[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		} else {
			out = append(out, fmt.Sprintf("\\x%02x", c)...)
		}
	}
	out = append(out, '"')
	if len(value) > max {
		out = append(out, "..."...)
	}
	return string(out)
}
