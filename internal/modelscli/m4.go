package modelscli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/novacron/novacron/models"
)

// M4Result is the M4 score of a set of forecasts.
type M4Result struct {
	NSeries     int     `json:"n_series"`
	Horizon     int     `json:"horizon"`
	Season      int     `json:"season"`
	SMAPE       float64 `json:"sMAPE"`
	MASE        float64 `json:"MASE"`
	OWA         float64 `json:"OWA"`
	Naive2SMAPE float64 `json:"naive2_sMAPE"`
	Naive2MASE  float64 `json:"naive2_MASE"`
	// Coverage is the fraction of test values inside the forecasts'
	// prediction intervals (ScoreM4Intervals); absent when not scored.
	Coverage *float64 `json:"coverage,omitempty"`
}

// ScoreM4Intervals returns the fraction of the test values that lie
// within [lower, upper] (M4-layout bound files, same ids as test).
func ScoreM4Intervals(test, lower, upper []M4Series) (float64, error) {
	lo := map[string][]float64{}
	for _, s := range lower {
		lo[s.ID] = s.Values
	}
	up := map[string][]float64{}
	for _, s := range upper {
		up[s.ID] = s.Values
	}
	in, total := 0, 0
	for _, s := range test {
		l, u := lo[s.ID], up[s.ID]
		if len(l) < len(s.Values) || len(u) < len(s.Values) {
			return 0, fmt.Errorf("series %s: interval bounds missing or shorter than the %d test values", s.ID, len(s.Values))
		}
		for i, v := range s.Values {
			total++
			if v >= l[i] && v <= u[i] {
				in++
			}
		}
	}
	if total == 0 {
		return 0, fmt.Errorf("no test values")
	}
	return float64(in) / float64(total), nil
}

// seriesErrors returns the mean sMAPE (%) and mean scaled error of f on y.
func seriesErrors(y, f []float64, scale float64) (smape, mase float64) {
	for i, yi := range y {
		d := math.Abs(yi - f[i])
		if den := math.Abs(yi) + math.Abs(f[i]); den != 0 {
			smape += 200 * d / den
		}
		mase += d
	}
	h := float64(len(y))
	return smape / h, mase / h / scale
}

// ScoreM4 scores forecasts with the M4 measures: sMAPE, MASE with
// seasonal period season, and OWA relative to Naive2, averaged over the
// series of test. train and fc must hold every test series.
func ScoreM4(train, test, fc []M4Series, season int) (*M4Result, error) {
	tr := map[string][]float64{}
	for _, s := range train {
		tr[s.ID] = s.Values
	}
	fm := map[string][]float64{}
	for _, s := range fc {
		fm[s.ID] = s.Values
	}
	if len(test) == 0 {
		return nil, fmt.Errorf("no series to evaluate")
	}
	h := len(test[0].Values)
	res := &M4Result{Horizon: h, Season: season}
	for _, s := range test {
		x, ok := tr[s.ID]
		if !ok {
			return nil, fmt.Errorf("series %s is not in the training file", s.ID)
		}
		if len(s.Values) != h {
			return nil, fmt.Errorf("series %s has %d test values, want %d", s.ID, len(s.Values), h)
		}
		f, ok := fm[s.ID]
		if !ok {
			return nil, fmt.Errorf("no forecasts for series %s", s.ID)
		}
		if len(f) < h {
			return nil, fmt.Errorf("series %s needs %d forecasts, has %d", s.ID, h, len(f))
		}
		for _, v := range f[:h] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("series %s has a non-finite forecast", s.ID)
			}
		}
		if len(x) <= season {
			return nil, fmt.Errorf("series %s too short for seasonal differences at lag %d", s.ID, season)
		}
		scale := 0.0
		for t := season; t < len(x); t++ {
			scale += math.Abs(x[t] - x[t-season])
		}
		scale /= float64(len(x) - season)
		if scale == 0 {
			return nil, fmt.Errorf("series %s: in-sample seasonal differences are all zero; MASE undefined", s.ID)
		}
		n2, err := models.Naive2{Season: season}.Forecast(x, h)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", s.ID, err)
		}
		sm, ms := seriesErrors(s.Values, f[:h], scale)
		ns, nm := seriesErrors(s.Values, n2.Point, scale)
		res.SMAPE += sm
		res.MASE += ms
		res.Naive2SMAPE += ns
		res.Naive2MASE += nm
		res.NSeries++
	}
	k := float64(res.NSeries)
	res.SMAPE /= k
	res.MASE /= k
	res.Naive2SMAPE /= k
	res.Naive2MASE /= k
	res.OWA = 0.5 * (res.SMAPE/res.Naive2SMAPE + res.MASE/res.Naive2MASE)
	return res, nil
}

// readM4File reads an M4-layout file.
func readM4File(path string) ([]M4Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := ReadM4CSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ForecasterNames lists the models `forecast --model` accepts; the first
// is the default.
var ForecasterNames = []string{"combination", "ets", "theta", "mstl", "snaive", "snaive-week", "naive2"}

// NewForecaster builds a forecaster by name for seasonal period season.
func NewForecaster(name string, season int) (models.Forecaster, error) {
	switch name {
	case "", "combination":
		return models.NewDefaultForecaster(season), nil
	case "ets":
		return models.ETS{Season: season}, nil
	case "theta":
		return models.Theta{Season: season}, nil
	case "mstl":
		return models.MSTL{Seasons: []int{season, 7 * season}, Log: true}, nil
	case "snaive":
		return models.SeasonalNaive{Season: season}, nil
	case "snaive-week":
		return models.SeasonalNaive{Season: 7 * season}, nil
	case "naive2":
		return models.Naive2{Season: season}, nil
	}
	return nil, fmt.Errorf("unknown model %q (want one of %s)", name, strings.Join(ForecasterNames, ", "))
}

// ForecastAll forecasts every series with the named model on all CPUs,
// reporting progress to progress (may be nil), and returns the point
// forecasts.
func ForecastAll(ctx context.Context, model string, series []M4Series, h, season int, progress io.Writer) ([][]float64, error) {
	fcs, err := ForecastSeries(ctx, model, series, h, season, progress)
	if err != nil {
		return nil, err
	}
	out := make([][]float64, len(fcs))
	for i, f := range fcs {
		out[i] = f.Point
	}
	return out, nil
}

// ForecastSeries is ForecastAll returning whole forecasts (point and
// prediction interval).
func ForecastSeries(ctx context.Context, model string, series []M4Series, h, season int, progress io.Writer) ([]models.Forecast, error) {
	fcer, err := NewForecaster(model, season)
	if err != nil {
		return nil, err
	}
	out := make([]models.Forecast, len(series))
	errs := make([]error, len(series))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				f, err := fcer.Forecast(series[i].Values, h)
				if err != nil {
					errs[i] = fmt.Errorf("series %s: %w", series[i].ID, err)
				} else {
					out[i] = f
				}
				mu.Lock()
				done++
				if progress != nil && (done%25 == 0 || done == len(series)) {
					fmt.Fprintf(progress, "forecast: %d/%d series\n", done, len(series))
				}
				mu.Unlock()
			}
		})
	}
	for i := range series {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return out, nil
}

func runForecast(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("forecast", stderr)
	model := fs.String("model", ForecasterNames[0], "model: "+strings.Join(ForecasterNames, ", "))
	train := fs.String("train", "", "M4-layout training CSV")
	h := fs.Int("horizon", 48, "forecast horizon in steps")
	season := fs.Int("season", 24, "seasonal period in steps")
	output := fs.String("output", "", "forecasts CSV to write (id,F1..Fh)")
	lower := fs.String("lower", "", "optional CSV to write the 95% interval's lower bounds to (same layout)")
	upper := fs.String("upper", "", "optional CSV to write the 95% interval's upper bounds to (same layout)")
	if err := parseFlags(fs, args, "train", "output"); err != nil {
		return err
	}
	if *h < 1 || *season < 1 {
		return fmt.Errorf("%w: --horizon and --season must be positive", ErrUsage)
	}
	if _, err := NewForecaster(*model, *season); err != nil {
		return fmt.Errorf("%w: --model=%q: %w", ErrUsage, *model, err)
	}
	series, err := readM4File(*train)
	if err != nil {
		return fmt.Errorf("--train=%q: %w", *train, err)
	}
	fcs, err := ForecastSeries(ctx, *model, series, *h, *season, stderr)
	if err != nil {
		return err
	}
	ids := make([]string, len(series))
	for i, s := range series {
		ids[i] = s.ID
	}
	for _, o := range []struct {
		flag, path string
		get        func(models.Forecast) []float64
	}{
		{"output", *output, func(f models.Forecast) []float64 { return f.Point }},
		{"lower", *lower, func(f models.Forecast) []float64 { return f.Lower }},
		{"upper", *upper, func(f models.Forecast) []float64 { return f.Upper }},
	} {
		if o.path == "" {
			continue
		}
		rows := make([][]float64, len(fcs))
		for i, f := range fcs {
			rows[i] = o.get(f)
		}
		if err := writeFile(o.path, func(w io.Writer) error { return WriteM4Forecasts(w, ids, rows) }); err != nil {
			return fmt.Errorf("--%s=%q: %w", o.flag, o.path, err)
		}
	}
	fmt.Fprintf(stdout, "wrote %d forecasts of %d steps (model %s) to %s\n", len(ids), *h, *model, *output)
	return nil
}

func runScoreForecasts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("score-forecasts", stderr)
	train := fs.String("train", "", "M4-layout training CSV")
	test := fs.String("test", "", "M4-layout test CSV")
	fcPath := fs.String("forecasts", "", "forecasts CSV (id,F1..Fh)")
	season := fs.Int("season", 24, "seasonal period for MASE and Naive2")
	lower := fs.String("lower", "", "optional lower interval bounds CSV (same layout); with --upper reports coverage")
	upper := fs.String("upper", "", "optional upper interval bounds CSV (same layout)")
	if err := parseFlags(fs, args, "train", "test", "forecasts"); err != nil {
		return err
	}
	tr, err := readM4File(*train)
	if err != nil {
		return fmt.Errorf("--train=%q: %w", *train, err)
	}
	te, err := readM4File(*test)
	if err != nil {
		return fmt.Errorf("--test=%q: %w", *test, err)
	}
	fc, err := readM4File(*fcPath)
	if err != nil {
		return fmt.Errorf("--forecasts=%q: %w", *fcPath, err)
	}
	res, err := ScoreM4(tr, te, fc, *season)
	if err != nil {
		return err
	}
	if (*lower == "") != (*upper == "") {
		return fmt.Errorf("%w: --lower and --upper go together", ErrUsage)
	}
	if *lower != "" {
		lo, err := readM4File(*lower)
		if err != nil {
			return fmt.Errorf("--lower=%q: %w", *lower, err)
		}
		up, err := readM4File(*upper)
		if err != nil {
			return fmt.Errorf("--upper=%q: %w", *upper, err)
		}
		cov, err := ScoreM4Intervals(te, lo, up)
		if err != nil {
			return fmt.Errorf("--lower/--upper: %w", err)
		}
		res.Coverage = &cov
	}
	fmt.Fprintf(stdout, "series: %d  horizon: %d  season: %d\n", res.NSeries, res.Horizon, res.Season)
	fmt.Fprintf(stdout, "sMAPE  %.3f   (Naive2 %.3f)\nMASE   %.3f   (Naive2 %.3f)\nOWA    %.3f\n", res.SMAPE, res.Naive2SMAPE, res.MASE, res.Naive2MASE, res.OWA)
	if res.Coverage != nil {
		fmt.Fprintf(stdout, "95%% interval coverage  %.3f\n", *res.Coverage)
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}
