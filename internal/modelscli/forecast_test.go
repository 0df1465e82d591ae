package modelscli

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDefaultForecasterOnM4Dev runs the forecast command with its defaults
// on the M4 hourly dev subset, writing interval bounds, and scores it: the
// OWA target (< 0.60) holds and the 95% interval covers the held-out test
// values at close to its nominal rate.
func TestDefaultForecasterOnM4Dev(t *testing.T) {
	if testing.Short() {
		t.Skip("forecasts 207 series")
	}
	data := sharedDir(t, "datasets", "m4-hourly-dev")
	train, test := filepath.Join(data, "Hourly-train.csv"), filepath.Join(data, "Hourly-test.csv")
	dir := t.TempDir()
	fc, lo, up := filepath.Join(dir, "fc.csv"), filepath.Join(dir, "lo.csv"), filepath.Join(dir, "up.csv")
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	require.NoError(t, Run(ctx, []string{"forecast", "--train", train, "--output", fc, "--lower", lo, "--upper", up}, &stdout, &stderr))
	stdout.Reset()
	require.NoError(t, Run(ctx, []string{"score-forecasts", "--train", train, "--test", test, "--forecasts", fc, "--lower", lo, "--upper", up}, &stdout, &stderr))
	var res M4Result
	lastJSON(t, stdout.Bytes(), &res)
	t.Logf("OWA %.3f  sMAPE %.3f  MASE %.3f  95%% coverage %.3f", res.OWA, res.SMAPE, res.MASE, *res.Coverage)
	require.Equal(t, 207, res.NSeries)
	require.Less(t, res.OWA, 0.60)
	require.NotNil(t, res.Coverage)
	require.InDelta(t, 0.95, *res.Coverage, 0.04)

	err := Run(ctx, []string{"score-forecasts", "--train", train, "--test", test, "--forecasts", fc, "--lower", lo}, &stdout, &stderr)
	require.ErrorIs(t, err, ErrUsage, "--lower without --upper")
}

func TestScoreM4Intervals(t *testing.T) {
	test := []M4Series{{ID: "a", Values: []float64{1, 2, 3, 4}}}
	lo := []M4Series{{ID: "a", Values: []float64{0, 2.5, 3, 0}}}
	up := []M4Series{{ID: "a", Values: []float64{2, 3, 3, 3.9}}}
	cov, err := ScoreM4Intervals(test, lo, up)
	require.NoError(t, err)
	require.InDelta(t, 0.5, cov, 1e-12) // 1 in, 2 below, 3 on both bounds (in), 4 above
	_, err = ScoreM4Intervals(test, lo, []M4Series{{ID: "a", Values: []float64{1}}})
	require.Error(t, err)
}
