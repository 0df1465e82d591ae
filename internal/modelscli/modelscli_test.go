package modelscli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/testserver"
)

// sharedDir returns the shared datasets and tools beside the repository,
// failing or skipping the test (testserver.Unavailable) when they are absent.
func sharedDir(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{testserver.RepoRoot(), "..", "shared"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		testserver.Unavailable(t, "shared datasets and reference scorers", err)
	}
	return p
}

func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		testserver.Unavailable(t, "python3 (runs the reference scorers)", err)
	}
	return py
}

// lastJSON decodes the last line of out.
func lastJSON(t *testing.T, out []byte, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), v), "output: %s", out)
}

func TestNABScorerAgreesWithReference(t *testing.T) {
	data := sharedDir(t, "datasets", "nab-dev")
	script := sharedDir(t, "tools", "nab", "score.py")
	py := python(t)
	for _, det := range []string{"ensemble", "likelihood-z"} {
		t.Run(det, func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr bytes.Buffer
			ctx := context.Background()
			require.NoError(t, Run(ctx, []string{"detect", "--detector", det, "--input", data, "--output", out}, &stdout, &stderr))
			stdout.Reset()
			labels := filepath.Join(data, "labels.json")
			require.NoError(t, Run(ctx, []string{"score-anomalies", "--data", data, "--labels", labels, "--results", out}, &stdout, &stderr))
			var ours NABResult
			lastJSON(t, stdout.Bytes(), &ours)
			ref, err := exec.Command(py, script, "--data", data, "--labels", labels, "--results", out, "--quiet").Output()
			require.NoError(t, err)
			var theirs struct {
				Profiles map[string]struct {
					Normalized float64 `json:"normalized"`
				} `json:"profiles"`
			}
			lastJSON(t, ref, &theirs)
			for _, p := range NABProfiles {
				require.InDelta(t, theirs.Profiles[p.Name].Normalized, ours.Profiles[p.Name].Normalized, 0.5, "profile %s", p.Name)
			}
		})
	}
}

func TestM4ScorerAgreesWithReference(t *testing.T) {
	data := sharedDir(t, "datasets", "m4-hourly-dev")
	script := sharedDir(t, "tools", "m4", "score.py")
	py := python(t)
	train, test := filepath.Join(data, "Hourly-train.csv"), filepath.Join(data, "Hourly-test.csv")
	for _, model := range []string{"snaive", "theta"} {
		t.Run(model, func(t *testing.T) {
			fc := filepath.Join(t.TempDir(), "fc.csv")
			var stdout, stderr bytes.Buffer
			ctx := context.Background()
			require.NoError(t, Run(ctx, []string{"forecast", "--model", model, "--train", train, "--output", fc}, &stdout, &stderr))
			stdout.Reset()
			require.NoError(t, Run(ctx, []string{"score-forecasts", "--train", train, "--test", test, "--forecasts", fc}, &stdout, &stderr))
			var ours M4Result
			lastJSON(t, stdout.Bytes(), &ours)
			ref, err := exec.Command(py, script, "--train", train, "--test", test, "--forecasts", fc).Output()
			require.NoError(t, err)
			var theirs M4Result
			lastJSON(t, ref, &theirs)
			require.InDelta(t, theirs.SMAPE, ours.SMAPE, 0.01)
			require.InDelta(t, theirs.MASE, ours.MASE, 0.01)
			require.InDelta(t, theirs.OWA, ours.OWA, 0.01)
			require.Equal(t, 207, ours.NSeries)
		})
	}
}

func TestNABScoringByHand(t *testing.T) {
	// 20 rows: probation floor(0.15*20) = 3 rows; one window on rows 10..13.
	times := make([]int64, 20)
	for i := range times {
		times[i] = int64(i) * 60_000
	}
	labels := map[string][][2]string{"a/x.csv": {{"1970-01-01 00:10:00.000000", "1970-01-01 00:13:00.000000"}}}
	scores := make([]float64, 20)
	scores[10] = 1 // earliest row of the window: x = -4/4 = -1, weight 1
	scores[17] = 0.5
	res, err := ScoreNAB(labels, map[string][]int64{"a/x.csv": times}, map[string][]float64{"a/x.csv": scores})
	require.NoError(t, err)
	std := res.Profiles["standard"]
	// Threshold 1: detect the window at its start, no FP: raw 1 = perfect.
	require.InDelta(t, 100, std.Normalized, 1e-9)
	require.Equal(t, 1.0, std.Threshold)
	require.Equal(t, 1, std.WindowsDetected)
	// Row 17 at threshold 0.5 would be an FP 4 rows after a width-4 window:
	// cost 0.11*sigma(4/3). A fixed check of the sigmoid: sigma(-1) ≈ 0.9866.
	require.InDelta(t, 0.98661429815, nabSigma(-1), 1e-9)
	require.InDelta(t, -1, nabSigma(4), 0)
	require.Equal(t, 3, probationRows(20))
	require.Equal(t, 750, probationRows(100000))
}

func TestScoreM4ByHand(t *testing.T) {
	// Non-seasonal (m=1) series 1,2,3,4: MASE scale = 1; Naive2 = naive = 4.
	train := []M4Series{{ID: "A", Values: []float64{1, 2, 3, 4}}}
	test := []M4Series{{ID: "A", Values: []float64{5, 6}}}
	fc := []M4Series{{ID: "A", Values: []float64{5, 5}}}
	res, err := ScoreM4(train, test, fc, 1)
	require.NoError(t, err)
	require.InDelta(t, (0+200.0/11)/2, res.SMAPE, 1e-12)
	require.InDelta(t, 0.5, res.MASE, 1e-12)
	require.InDelta(t, (200.0/9+400.0/10)/2, res.Naive2SMAPE, 1e-12)
	require.InDelta(t, 1.5, res.Naive2MASE, 1e-12)
	require.InDelta(t, 0.5*(res.SMAPE/res.Naive2SMAPE+0.5/1.5), res.OWA, 1e-12)
}

func TestDetectKeepsLayoutAndRows(t *testing.T) {
	in, out := t.TempDir(), t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(in, "deep", "er"), 0o755))
	csv := "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,\n2024-01-01 00:05:00,3\n2024-01-01 00:00:00,2.5\n"
	require.NoError(t, os.WriteFile(filepath.Join(in, "deep", "er", "s.csv"), []byte(csv), 0o644))
	var stdout, stderr bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"detect", "--input", in, "--output", out}, &stdout, &stderr))
	b, err := os.ReadFile(filepath.Join(out, "deep", "er", "s.csv"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Equal(t, "timestamp,value,anomaly_score", lines[0])
	require.Len(t, lines, 5)
	require.True(t, strings.HasPrefix(lines[2], "2024-01-01 00:05:00,,"), lines[2])
	require.True(t, strings.HasPrefix(lines[4], "2024-01-01 00:00:00,2.5,"), lines[4])
	require.Contains(t, stderr.String(), "[1/1]")
}

func TestRunUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	require.ErrorIs(t, Run(ctx, nil, &stdout, &stderr), ErrUsage)
	require.ErrorIs(t, Run(ctx, []string{"nope"}, &stdout, &stderr), ErrUsage)
	err := Run(ctx, []string{"detect", "--input", "x"}, &stdout, &stderr)
	require.ErrorIs(t, err, ErrUsage)
	require.Contains(t, err.Error(), "--output")
	require.ErrorIs(t, Run(ctx, []string{"detect", "--detector", "bogus", "--input", "x", "--output", "y"}, &stdout, &stderr), ErrUsage)
	require.ErrorIs(t, Run(ctx, []string{"forecast", "--model", "bogus", "--train", "x", "--output", "y"}, &stdout, &stderr), ErrUsage)
}

func TestBacktestAndPlot(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i := range 24 * 30 {
		ts := int64(1_700_000_000+i*3600) * 1000
		v := 100 + 10*math.Sin(2*math.Pi*float64(i)/24)
		b.WriteString(msToNAB(ts) + "," + formatF(v) + "\n")
	}
	in := filepath.Join(dir, "s.csv")
	require.NoError(t, os.WriteFile(in, []byte(b.String()), 0o644))
	var stdout, stderr bytes.Buffer
	ctx := context.Background()
	require.NoError(t, Run(ctx, []string{"backtest", "--input", in, "--model", "snaive", "--horizon", "24", "--season", "24"}, &stdout, &stderr))
	var res BacktestResult
	lastJSON(t, stdout.Bytes(), &res)
	require.Greater(t, res.Origins, 5)
	require.InDelta(t, 0, res.SMAPE, 1e-6, "a pure daily cycle is forecast exactly by the seasonal naive")
	png := filepath.Join(dir, "s.png")
	require.NoError(t, Run(ctx, []string{"plot", "--input", in, "--output", png, "--horizon", "48"}, &stdout, &stderr))
	img, err := os.ReadFile(png)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(img, []byte("\x89PNG")))
}
