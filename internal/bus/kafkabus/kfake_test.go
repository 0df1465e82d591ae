package kafkabus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/bustest"
)

// testConfig is the default config tuned for quick group joins in tests.
func testConfig(brokers []string) Config {
	cfg := NewDefaultConfig()
	cfg.Brokers = brokers
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.CommitInterval = 200 * time.Millisecond
	return cfg
}

func newTestBus(t *testing.T, brokers []string) *Bus {
	t.Helper()
	b, err := New(testConfig(brokers), Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newKfake(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func TestConformanceKfake(t *testing.T) {
	bustest.RunConformance(t, func(t *testing.T) novacron.Bus {
		return newTestBus(t, newKfake(t))
	})
}
