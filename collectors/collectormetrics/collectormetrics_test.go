package collectormetrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestTwoCollectorsShareARegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := New(reg, "sim")
	require.NoError(t, err)
	b, err := New(reg, "libvirt")
	require.NoError(t, err)
	a.Series.Add(3)
	b.ErrCollect.Inc()
	require.Equal(t, 3.0, testutil.ToFloat64(a.Series))
	require.Equal(t, 0.0, testutil.ToFloat64(b.Series))
	_, err = New(reg, "sim")
	require.Error(t, err, "one collector type registers once")
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	_, err = New(nil, "x")
	require.NoError(t, err)
}
