package modelscli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/novacron/novacron/models"
)

// DetectorNames lists the detectors `detect --detector` accepts; the first
// is the default.
var DetectorNames = []string{"ensemble", "robust-z", "cusum", "shesd", "likelihood-z"}

// ScoreSeries runs the named detector over rows in order and returns one
// score per row. Streaming detectors see each row once, in order; shesd
// is a batch method run causally (see models.CausalSHESD).
func ScoreSeries(name string, rows []Row) ([]float64, error) {
	scores := make([]float64, len(rows))
	if name == "shesd" {
		ts := make([]int64, len(rows))
		vs := make([]float64, len(rows))
		for i, r := range rows {
			ts[i], vs[i] = r.T, r.V
		}
		return models.CausalSHESD(ts, vs, models.NewDefaultSHESDConfig()), nil
	}
	d, err := NewDetector(name)
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		scores[i] = d.Observe(r.T, r.V).Score
	}
	return scores, nil
}

// NewDetector builds a streaming detector by name.
func NewDetector(name string) (models.Detector, error) {
	switch name {
	case "", "ensemble":
		return models.NewDefaultDetector(), nil
	case "robust-z":
		return models.NewRobustZ(models.NewDefaultRobustZConfig()), nil
	case "cusum":
		return models.NewCUSUM(models.NewDefaultCUSUMConfig()), nil
	case "likelihood-z":
		return models.NewLikelihood(models.NewRobustZ(models.NewDefaultRobustZConfig()), models.NewDefaultLikelihoodConfig()), nil
	}
	return nil, fmt.Errorf("unknown detector %q (want one of %s)", name, strings.Join(DetectorNames, ", "))
}

// listCSV returns the relative paths of all .csv files under dir, sorted.
func listCSV(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".csv") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func runDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("detect", stderr)
	det := fs.String("detector", DetectorNames[0], "detector: "+strings.Join(DetectorNames, ", "))
	in := fs.String("input", "", "directory of NAB-layout CSVs (timestamp,value), any depth")
	out := fs.String("output", "", "directory to write timestamp,value,anomaly_score CSVs to")
	if err := parseFlags(fs, args, "input", "output"); err != nil {
		return err
	}
	if _, err := NewDetector(*det); err != nil && *det != "shesd" {
		return fmt.Errorf("%w: --detector=%q: %w", ErrUsage, *det, err)
	}
	files, err := listCSV(*in)
	if err != nil {
		return fmt.Errorf("list --input=%q: %w", *in, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("--input=%q holds no .csv files", *in)
	}
	total := 0
	for i, rel := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, err := readSeriesFile(filepath.Join(*in, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("--input=%q: %w", *in, err)
		}
		scores, err := ScoreSeries(*det, rows)
		if err != nil {
			return err
		}
		dst := filepath.Join(*out, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("--output=%q: %w", *out, err)
		}
		if err := writeFile(dst, func(w io.Writer) error { return WriteScoresCSV(w, rows, scores) }); err != nil {
			return fmt.Errorf("--output=%q: %w", *out, err)
		}
		total += len(rows)
		fmt.Fprintf(stderr, "detect: [%d/%d] %s (%d rows)\n", i+1, len(files), rel, len(rows))
	}
	fmt.Fprintf(stdout, "scored %d files, %d rows with detector %s into %s\n", len(files), total, *det, *out)
	return nil
}

// writeFile writes a file through fn, reporting close errors.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runScoreAnomalies(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("score-anomalies", stderr)
	data := fs.String("data", "", "NAB-layout data directory")
	labelsPath := fs.String("labels", "", "labels JSON (NAB combined_windows.json shape)")
	results := fs.String("results", "", "directory of detector results, same relative paths as --data")
	perFile := fs.Bool("per-file", false, "include the per-file breakdown in the JSON")
	if err := parseFlags(fs, args, "data", "labels", "results"); err != nil {
		return err
	}
	res, err := ScoreNABDirs(ctx, *data, *labelsPath, *results)
	if err != nil {
		return err
	}
	for _, p := range NABProfiles {
		r := res.Profiles[p.Name]
		fmt.Fprintf(stdout, "%-14s normalised %8.3f  raw %9.4f  threshold %.6g  windows hit %d/%d  TP %d FP %d FN %d TN %d rows\n",
			p.Name, r.Normalized, r.Raw, r.Threshold, r.WindowsDetected, r.WindowsDetected+r.WindowsMissed, r.TP, r.FP, r.FN, r.TN)
	}
	if !*perFile {
		for k, p := range res.Profiles {
			p.PerFile = nil
			res.Profiles[k] = p
		}
	}
	b, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(b))
	return nil
}

// ScoreNABDirs scores the results directory against the data and labels,
// as `models score-anomalies` does.
func ScoreNABDirs(ctx context.Context, data, labelsPath, results string) (*NABResult, error) {
	labels, err := ReadNABLabels(labelsPath)
	if err != nil {
		return nil, fmt.Errorf("--labels=%q: %w", labelsPath, err)
	}
	times := map[string][]int64{}
	scores := map[string][]float64{}
	for rel := range labels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows, err := readSeriesFile(filepath.Join(data, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("--data=%q: %w", data, err)
		}
		ts := make([]int64, len(rows))
		for i, r := range rows {
			ts[i] = r.T
		}
		rt, sc, err := readScoresFile(filepath.Join(results, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("--results=%q: %w", results, err)
		}
		if len(rt) != len(ts) {
			return nil, fmt.Errorf("--results=%q: %s has %d rows, data file has %d", results, rel, len(rt), len(ts))
		}
		for i := range rt {
			if rt[i] != ts[i] {
				return nil, fmt.Errorf("--results=%q: %s row %d: timestamp differs from the data file", results, rel, i+2)
			}
		}
		times[rel], scores[rel] = ts, sc
	}
	return ScoreNAB(labels, times, scores)
}
