package platform_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/platform"
)

func TestKinds(t *testing.T) {
	if diff := cmp.Diff([]string{"auto", "userspace"}, platform.Kinds()); diff != "" {
		t.Errorf("Kinds() (-want +got):\n%s", diff)
	}
}

func TestNewUnknownKind(t *testing.T) {
	for _, kind := range []string{"bogus", "kernel", "nt", "Userspace"} {
		_, err := platform.New(kind, nil)
		if err == nil || !strings.Contains(err.Error(), strconv.Quote(kind)) {
			t.Errorf("New(%q) = %v, want an error naming %q", kind, err, kind)
		}
	}
}
