package paymentspb_test

import (
	"testing"

	"github.com/idemkey/idemkey/client/go/internal/protogen"
)

// The committed generated code is what generate.sh makes from the proto.
func TestGeneratedCodeIsCurrent(t *testing.T) { protogen.CheckCurrent(t) }
