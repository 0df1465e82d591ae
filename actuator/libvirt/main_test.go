package libvirt

import (
	"os"
	"testing"

	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopLibvirt()
	os.Exit(code)
}
