package kafkabus

import (
	"os"
	"testing"

	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopAll()
	os.Exit(code)
}
