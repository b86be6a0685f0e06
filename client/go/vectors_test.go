package idemkey_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/internal/testenv"
)

func TestFingerprintVectors(t *testing.T) {
	var file struct {
		Vectors []struct {
			Name           string `json:"name"`
			Method         string `json:"method"`
			Target         string `json:"target"`
			BodyBase64     string `json:"body_base64"`
			FingerprintHex string `json:"fingerprint_hex"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadRepoFile(t, "common/rules/testdata/fingerprint_vectors.json"), &file); err != nil {
		t.Fatalf("parsing the vectors: %v", err)
	}
	if len(file.Vectors) < 5 {
		t.Fatalf("only %d fingerprint vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
		if err != nil {
			t.Fatalf("%s: body_base64: %v", v.Name, err)
		}
		got := idemkey.Fingerprint(v.Method, v.Target, body)
		if hex.EncodeToString(got[:]) != v.FingerprintHex {
			t.Errorf("%s: Fingerprint(%q, %q, %d bytes) = %x, want %s", v.Name, v.Method, v.Target, len(body), got, v.FingerprintHex)
		}
	}
}

func TestFingerprintWorkedExample(t *testing.T) {
	got := idemkey.Fingerprint("POST", "/v1/charges", []byte(`{"amount":100}`))
	if want := "605684389a44270beeb1d3af67a75b8e200fcefa9e69dbcccfa3fbbb64bc71ec"; hex.EncodeToString(got[:]) != want {
		t.Fatalf("got %x, want %s", got, want)
	}
}

func TestTenantNameVectors(t *testing.T) {
	var file struct {
		Vectors []struct {
			Name   string `json:"name"`
			OrgID  string `json:"org_id"`
			Tenant string `json:"tenant"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(testenv.ReadRepoFile(t, "common/rules/testdata/tenant_name_vectors.json"), &file); err != nil {
		t.Fatalf("parsing the vectors: %v", err)
	}
	if len(file.Vectors) < 5 {
		t.Fatalf("only %d tenant name vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		got := idemkey.TenantNameFor(v.OrgID)
		if got != v.Tenant {
			t.Errorf("%s: TenantNameFor(%q) = %q, want %q", v.Name, v.OrgID, got, v.Tenant)
		}
		if got != "" {
			if err := idemkey.ValidateTenantName(got); err != nil {
				t.Errorf("%s: %q is not a valid tenant name: %v", v.Name, got, err)
			}
		}
	}
}
