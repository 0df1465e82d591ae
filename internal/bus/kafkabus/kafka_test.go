package kafkabus

import (
	"testing"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/bustest"
	"github.com/novacron/novacron/internal/testserver"
)

// TestConformanceKafka runs the conformance suite against a real Apache
// Kafka broker (see testserver.Kafka).
func TestConformanceKafka(t *testing.T) {
	brokers := testserver.Kafka(t)
	bustest.RunConformance(t, func(t *testing.T) novacron.Bus {
		return newTestBus(t, brokers)
	})
}
