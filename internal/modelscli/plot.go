package modelscli

import (
	"context"
	"fmt"
	"image/color"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/novacron/novacron/models"
)

// PlotSeries draws a series with the default detector's expected value and
// normal band, its anomaly scores in a lower panel and, when h > 0, the
// default forecaster's forecast with its 95% interval after the last
// sample. Samples are plotted against their index. It writes a PNG.
func PlotSeries(w io.Writer, title string, rows []Row, h, season int, width, height vg.Length) error {
	det := models.NewDefaultDetector()
	n := len(rows)
	vals := make(plotter.XYs, 0, n)
	exp := make(plotter.XYs, 0, n)
	lo := make(plotter.XYs, 0, n)
	hi := make(plotter.XYs, 0, n)
	sc := make(plotter.XYs, 0, n)
	y := make([]float64, 0, n)
	for i, r := range rows {
		res := det.Observe(r.T, r.V)
		if math.IsNaN(r.V) || math.IsInf(r.V, 0) {
			continue
		}
		x := float64(i)
		vals = append(vals, plotter.XY{X: x, Y: r.V})
		exp = append(exp, plotter.XY{X: x, Y: res.Expected})
		lo = append(lo, plotter.XY{X: x, Y: res.Lower})
		hi = append(hi, plotter.XY{X: x, Y: res.Upper})
		sc = append(sc, plotter.XY{X: x, Y: res.Score})
		y = append(y, r.V)
	}
	if len(vals) == 0 {
		return fmt.Errorf("no finite values to plot")
	}
	top := plot.New()
	top.Title.Text = title
	top.Y.Label.Text = "value"
	band := func(l, u plotter.XYs, c color.Color) error {
		poly := append(plotter.XYs{}, l...)
		for i := len(u) - 1; i >= 0; i-- {
			poly = append(poly, u[i])
		}
		p, err := plotter.NewPolygon(poly)
		if err != nil {
			return err
		}
		p.Color = c
		p.LineStyle.Width = 0
		top.Add(p)
		return nil
	}
	if err := band(lo, hi, color.RGBA{R: 190, G: 210, B: 240, A: 255}); err != nil {
		return err
	}
	lv, err := plotter.NewLine(vals)
	if err != nil {
		return err
	}
	lv.Color = color.Black
	le, err := plotter.NewLine(exp)
	if err != nil {
		return err
	}
	le.Color = color.RGBA{B: 200, A: 255}
	le.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	top.Add(lv, le)
	top.Legend.Add("value", lv)
	top.Legend.Add("expected (band: 3 sigma)", le)
	if h > 0 {
		fc, err := models.NewDefaultForecaster(season).Forecast(y, h)
		if err == nil {
			last := vals[len(vals)-1].X
			fp := make(plotter.XYs, h)
			fl := make(plotter.XYs, h)
			fu := make(plotter.XYs, h)
			for i := range h {
				x := last + float64(i+1)
				fp[i] = plotter.XY{X: x, Y: fc.Point[i]}
				fl[i] = plotter.XY{X: x, Y: fc.Lower[i]}
				fu[i] = plotter.XY{X: x, Y: fc.Upper[i]}
			}
			if err := band(fl, fu, color.RGBA{R: 250, G: 210, B: 170, A: 255}); err != nil {
				return err
			}
			lf, err := plotter.NewLine(fp)
			if err != nil {
				return err
			}
			lf.Color = color.RGBA{R: 220, G: 90, A: 255}
			top.Add(lf)
			top.Legend.Add("forecast (95% interval)", lf)
		}
	}
	top.Legend.Top = true
	bottom := plot.New()
	bottom.Y.Label.Text = "anomaly score"
	bottom.X.Label.Text = "sample"
	bottom.Y.Min, bottom.Y.Max = 0, 1
	ls, err := plotter.NewLine(sc)
	if err != nil {
		return err
	}
	ls.Color = color.RGBA{R: 200, A: 255}
	bottom.Add(ls)
	bottom.X.Min, bottom.X.Max = top.X.Min, top.X.Max

	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: vg.Millimeter, PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func runPlot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("plot", stderr)
	input := fs.String("input", "", "NAB-layout CSV (timestamp,value) holding one series")
	output := fs.String("output", "", "PNG file to write")
	h := fs.Int("horizon", 0, "forecast horizon in steps (0: no forecast)")
	season := fs.Int("season", 24, "seasonal period in steps for the forecast")
	if err := parseFlags(fs, args, "input", "output"); err != nil {
		return err
	}
	rows, err := readSeriesFile(*input)
	if err != nil {
		return fmt.Errorf("--input=%q: %w", *input, err)
	}
	if err := writeFile(*output, func(w io.Writer) error {
		return PlotSeries(w, *input, rows, *h, *season, 30*vg.Centimeter, 18*vg.Centimeter)
	}); err != nil {
		return fmt.Errorf("--output=%q: %w", *output, err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *output)
	return ctx.Err()
}
