package modelscli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/novacron/novacron/models"
)

// BacktestResult summarises a rolling-origin evaluation.
type BacktestResult struct {
	Model    string  `json:"model"`
	Origins  int     `json:"origins"`
	Horizon  int     `json:"horizon"`
	SMAPE    float64 `json:"sMAPE"`
	MASE     float64 `json:"MASE"`
	Coverage float64 `json:"coverage_95"`
}

// Backtest evaluates a forecaster with rolling origins: for each origin
// from minTrain on, every step values apart, it forecasts h values from
// the values before the origin and compares them with the actual ones.
// MASE is scaled by the in-sample seasonal naive error at each origin.
// NaN values are dropped first.
func Backtest(ctx context.Context, f models.Forecaster, y []float64, h, season, minTrain, step int, progress io.Writer) (*BacktestResult, error) {
	clean := y[:0:0]
	for _, v := range y {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			clean = append(clean, v)
		}
	}
	y = clean
	if minTrain <= season || minTrain+h > len(y) {
		return nil, fmt.Errorf("series of %d values too short for --min-train=%d and --horizon=%d", len(y), minTrain, h)
	}
	res := &BacktestResult{Horizon: h}
	var covered, total int
	for o := minTrain; o+h <= len(y); o += step {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fc, err := f.Forecast(y[:o], h)
		if err != nil {
			return nil, fmt.Errorf("origin %d: %w", o, err)
		}
		res.Model = fc.Model
		scale := 0.0
		for t := season; t < o; t++ {
			scale += math.Abs(y[t] - y[t-season])
		}
		scale /= float64(o - season)
		sm, ms := seriesErrors(y[o:o+h], fc.Point, math.Max(scale, 1e-12))
		res.SMAPE += sm
		res.MASE += ms
		for i := range h {
			total++
			if fc.Lower != nil && y[o+i] >= fc.Lower[i] && y[o+i] <= fc.Upper[i] {
				covered++
			}
		}
		res.Origins++
		if progress != nil && res.Origins%10 == 0 {
			fmt.Fprintf(progress, "backtest: %d origins\n", res.Origins)
		}
	}
	res.SMAPE /= float64(res.Origins)
	res.MASE /= float64(res.Origins)
	res.Coverage = float64(covered) / float64(total)
	return res, nil
}

func runBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backtest", stderr)
	model := fs.String("model", ForecasterNames[0], "model: "+strings.Join(ForecasterNames, ", "))
	input := fs.String("input", "", "NAB-layout CSV (timestamp,value) holding one series")
	h := fs.Int("horizon", 48, "forecast horizon in steps")
	season := fs.Int("season", 24, "seasonal period in steps")
	minTrain := fs.Int("min-train", 0, "values before the first origin (default: a third of the series)")
	step := fs.Int("step", 0, "steps between origins (default: the horizon)")
	if err := parseFlags(fs, args, "input"); err != nil {
		return err
	}
	fcer, err := NewForecaster(*model, *season)
	if err != nil {
		return fmt.Errorf("%w: --model=%q: %w", ErrUsage, *model, err)
	}
	rows, err := readSeriesFile(*input)
	if err != nil {
		return fmt.Errorf("--input=%q: %w", *input, err)
	}
	y := make([]float64, len(rows))
	for i, r := range rows {
		y[i] = r.V
	}
	if *minTrain == 0 {
		*minTrain = len(y) / 3
	}
	if *step <= 0 {
		*step = *h
	}
	res, err := Backtest(ctx, fcer, y, *h, *season, *minTrain, *step, stderr)
	if err != nil {
		return fmt.Errorf("--input=%q: %w", *input, err)
	}
	fmt.Fprintf(stdout, "model %s: %d origins, horizon %d: sMAPE %.3f  MASE %.3f  95%% interval coverage %.3f\n",
		res.Model, res.Origins, res.Horizon, res.SMAPE, res.MASE, res.Coverage)
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}
