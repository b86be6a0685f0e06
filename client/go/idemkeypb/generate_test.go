package idemkeypb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The committed generated code is what generate.sh makes from the protos.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	for _, tool := range []string{"protoc", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH: cannot regenerate to compare", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("./generate.sh", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	fresh, err := filepath.Glob(filepath.Join(out, "*.go"))
	if err != nil || len(fresh) != 4 {
		t.Fatalf("generate.sh made %v (%v), want 4 files", fresh, err)
	}
	for _, f := range fresh {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Base(f))
		if err != nil {
			t.Fatalf("%s is generated but not committed: %v", filepath.Base(f), err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh generation: run idemkeypb/generate.sh", filepath.Base(f))
		}
	}
}
