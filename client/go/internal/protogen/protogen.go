// Package protogen keeps the module's generated protobuf code current:
// protogen.sh generates a package's code (each generated package's
// generate.sh calls it), and CheckCurrent is the package's test that the
// committed files are what it makes now.
package protogen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CheckCurrent runs ./generate.sh of the package under test (the working
// directory of its test) into a temporary directory and fails t unless the
// *.pb.go files it makes are, by name and bytes, the committed ones. It
// skips when protoc or protoc-gen-go-grpc is not on PATH.
func CheckCurrent(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"protoc", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH: cannot regenerate to compare", tool)
		}
	}
	out := t.TempDir()
	if b, err := exec.Command("./generate.sh", out).CombinedOutput(); err != nil {
		t.Fatalf("generate.sh: %v\n%s", err, b)
	}
	fresh := pbFiles(t, out)
	committed := pbFiles(t, ".")
	if len(fresh) == 0 {
		t.Fatalf("generate.sh made no .pb.go file")
	}
	for name, want := range fresh {
		got, ok := committed[name]
		if !ok {
			t.Errorf("%s is generated but not committed: run ./generate.sh", name)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh generation: run ./generate.sh", name)
		}
	}
	for name := range committed {
		if _, ok := fresh[name]; !ok {
			t.Errorf("%s is committed but no longer generated: remove it", name)
		}
	}
}

// pbFiles returns the *.pb.go files in dir, by name.
func pbFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	return files
}
