package busmetrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ProducedRecords.WithLabelValues("t").Inc()
	m.ProducedBytes.WithLabelValues("t").Add(10)
	m.ConsumedRecords.WithLabelValues("t").Inc()
	m.ProduceDuration.Observe(0.01)
	m.ConsumerLag.WithLabelValues("g").Set(1)
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestNilRegistererDoesNotRegister(t *testing.T) {
	m := New(nil)
	m.ProduceErrors.Inc() // usable without a registry
	require.Equal(t, 1.0, testutil.ToFloat64(m.ProduceErrors))
}

func TestLagReportersAddUp(t *testing.T) {
	m := New(nil)
	a, b := m.NewLagReporter("g"), m.NewLagReporter("g")
	a.Set(5)
	b.Set(7)
	require.Equal(t, 12.0, testutil.ToFloat64(m.ConsumerLag.WithLabelValues("g")))
	a.Set(2)
	b.Set(-1) // unknown counts as zero
	require.Equal(t, 2.0, testutil.ToFloat64(m.ConsumerLag.WithLabelValues("g")))
	a.Clear()
	require.Equal(t, 0.0, testutil.ToFloat64(m.ConsumerLag.WithLabelValues("g")))
}
