package modelscli

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// NABProfile is one NAB application profile: the weights of a true
// positive, a false positive and a missed window.
type NABProfile struct {
	Name string  `json:"-"`
	TP   float64 `json:"tp"`
	FP   float64 `json:"fp"`
	FN   float64 `json:"fn"`
}

// NABProfiles are NAB's three profiles (config/profiles.json), in the
// order they are reported.
var NABProfiles = []NABProfile{
	{Name: "standard", TP: 1, FP: 0.11, FN: 1},
	{Name: "reward_low_FP", TP: 1, FP: 0.22, FN: 1},
	{Name: "reward_low_FN", TP: 1, FP: 0.11, FN: 2},
}

// nabFile holds one data file prepared for scoring.
type nabFile struct {
	rel        string
	n          int
	probation  int
	windows    [][2]int
	scores     []float64
	windowOf   []int
	unitValue  []float64
	nScorableW int
}

// nabSigma is NAB's scaled sigmoid.
func nabSigma(x float64) float64 {
	if x > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*x)) - 1
}

// probationRows is the number of leading rows NAB never scores.
func probationRows(n int) int {
	return int(math.Ceil(math.Min(math.Floor(0.15*float64(n)), 0.15*5000)))
}

// ReadNABLabels reads a combined_windows.json-shaped file.
func ReadNABLabels(path string) (map[string][][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	var raw map[string][][]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parse labels %s: %w", path, err)
	}
	out := make(map[string][][2]string, len(raw))
	for k, ws := range raw {
		k = strings.ReplaceAll(k, `\`, "/")
		for _, w := range ws {
			if len(w) != 2 {
				return nil, fmt.Errorf("labels %s: window %v of %s is not a pair", path, w, k)
			}
			out[k] = append(out[k], [2]string{w[0], w[1]})
		}
		if out[k] == nil {
			out[k] = [][2]string{}
		}
	}
	return out, nil
}

// prepareNABFile builds the per-row weights of one data file given its
// timestamps (ms), window edges and the detector's scores.
func prepareNABFile(rel string, times []int64, windows [][2]string, scores []float64) (*nabFile, error) {
	n := len(times)
	indexOf := make(map[int64]int, n)
	for i, t := range times {
		if _, ok := indexOf[t]; !ok {
			indexOf[t] = i
		}
	}
	fd := &nabFile{rel: rel, n: n, probation: probationRows(n), scores: scores}
	for _, w := range windows {
		a, err := ParseTimestamp(w[0])
		if err != nil {
			return nil, fmt.Errorf("window of %s: %w", rel, err)
		}
		b, err := ParseTimestamp(w[1])
		if err != nil {
			return nil, fmt.Errorf("window of %s: %w", rel, err)
		}
		lo, ok1 := indexOf[a]
		hi, ok2 := indexOf[b]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("window %v of %s: edge timestamp not in the data file", w, rel)
		}
		if hi < lo {
			return nil, fmt.Errorf("window %v of %s ends before it starts", w, rel)
		}
		fd.windows = append(fd.windows, [2]int{lo, hi})
	}
	sort.Slice(fd.windows, func(i, j int) bool { return fd.windows[i][0] < fd.windows[j][0] })
	for i := 1; i < len(fd.windows); i++ {
		if fd.windows[i][0] <= fd.windows[i-1][1] {
			return nil, fmt.Errorf("windows of %s overlap", rel)
		}
	}
	fd.windowOf = make([]int, n)
	fd.unitValue = make([]float64, n)
	for i := range fd.windowOf {
		fd.windowOf[i] = -1
	}
	sigStart := nabSigma(-1)
	for w, lh := range fd.windows {
		lo, hi := lh[0], lh[1]
		width := float64(hi - lo + 1)
		for i := lo; i <= hi; i++ {
			fd.windowOf[i] = w
			fd.unitValue[i] = nabSigma(-float64(hi-i+1)/width) / sigStart
		}
	}
	prevEnd, prevWidth, have := 0, 0, false
	wi := 0
	for i := 0; i < n; i++ {
		for wi < len(fd.windows) && fd.windows[wi][1] < i {
			prevEnd, prevWidth, have = fd.windows[wi][1], fd.windows[wi][1]-fd.windows[wi][0]+1, true
			wi++
		}
		if fd.windowOf[i] >= 0 {
			continue
		}
		if !have || prevWidth <= 1 {
			fd.unitValue[i] = -1
		} else {
			fd.unitValue[i] = nabSigma(math.Abs(float64(i-prevEnd)) / float64(prevWidth-1))
		}
	}
	for _, w := range fd.windows {
		if w[1] >= fd.probation {
			fd.nScorableW++
		}
	}
	return fd, nil
}

// NABProfileResult is the score of one profile over a corpus.
type NABProfileResult struct {
	Normalized      float64 `json:"normalized"`
	Raw             float64 `json:"raw"`
	NullRaw         float64 `json:"null_raw"`
	PerfectRaw      float64 `json:"perfect_raw"`
	Threshold       float64 `json:"threshold"`
	TP              int     `json:"tp"`
	FP              int     `json:"fp"`
	FN              int     `json:"fn"`
	TN              int     `json:"tn"`
	WindowsDetected int     `json:"windows_detected"`
	WindowsMissed   int     `json:"windows_missed"`
	// PerFile breaks the score down by file at the chosen threshold.
	PerFile []NABFileResult `json:"per_file,omitempty"`
}

// NABFileResult is one file's share of a profile's score.
type NABFileResult struct {
	File            string  `json:"file"`
	Raw             float64 `json:"raw"`
	FP              int     `json:"fp_rows"`
	WindowsDetected int     `json:"windows_detected"`
	WindowsMissed   int     `json:"windows_missed"`
}

// NABResult is the outcome of scoring a corpus under every profile.
type NABResult struct {
	Files    int                         `json:"files"`
	Windows  int                         `json:"windows"`
	Rows     int                         `json:"rows"`
	Profiles map[string]NABProfileResult `json:"profiles"`
}

// optimiseThreshold sweeps every distinct score of the scorable rows and
// returns the threshold with the best raw score (ties to the highest); ok is
// false when "no detection" is best.
func optimiseThreshold(files []*nabFile, p NABProfile) (thr float64, ok bool) {
	type row struct {
		s   float64
		w   int
		val float64
	}
	var rows []row
	gid, nScored := 0, 0
	for _, fd := range files {
		for i := fd.probation; i < fd.n; i++ {
			w := fd.windowOf[i]
			if w >= 0 {
				w += gid
			}
			rows = append(rows, row{fd.scores[i], w, fd.unitValue[i]})
		}
		nScored += fd.nScorableW
		gid += len(fd.windows)
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		switch {
		case a.s > b.s:
			return -1
		case a.s < b.s:
			return 1
		}
		return 0
	})
	best := make(map[int]float64)
	total := -p.FN * float64(nScored)
	bestTotal := total
	for k := 0; k < len(rows); {
		s := rows[k].s
		for ; k < len(rows) && rows[k].s == s; k++ {
			r := rows[k]
			if r.w < 0 {
				total += p.FP * r.val
				continue
			}
			v := p.TP * r.val
			old, seen := best[r.w]
			if !seen {
				old = -p.FN
			}
			if v > old {
				total += v - old
				best[r.w] = v
			}
		}
		if total > bestTotal {
			bestTotal, thr, ok = total, s, true
		}
	}
	return thr, ok
}

// scoreAt scores the corpus at a threshold (ok false: no detections).
func scoreAt(files []*nabFile, p NABProfile, thr float64, ok bool) NABProfileResult {
	var res NABProfileResult
	for _, fd := range files {
		before, fpBefore, detBefore, missBefore := res.Raw, res.FP, res.WindowsDetected, res.WindowsMissed
		best := map[int]float64{}
		for i := fd.probation; i < fd.n; i++ {
			hit := ok && fd.scores[i] >= thr
			w := fd.windowOf[i]
			switch {
			case w >= 0 && hit:
				res.TP++
				v := p.TP * fd.unitValue[i]
				if old, seen := best[w]; !seen || v > old {
					best[w] = v
				}
			case w >= 0:
				res.FN++
			case hit:
				res.FP++
				res.Raw += p.FP * fd.unitValue[i]
			default:
				res.TN++
			}
		}
		for w, lh := range fd.windows {
			if lh[1] < fd.probation {
				continue
			}
			if v, seen := best[w]; seen {
				res.Raw += math.Max(v, -p.FN)
				res.WindowsDetected++
			} else {
				res.Raw -= p.FN
				res.WindowsMissed++
			}
		}
		res.PerFile = append(res.PerFile, NABFileResult{File: fd.rel, Raw: res.Raw - before, FP: res.FP - fpBefore,
			WindowsDetected: res.WindowsDetected - detBefore, WindowsMissed: res.WindowsMissed - missBefore})
	}
	return res
}

// ScoreNAB scores detector results under the NAB rules, as the reference
// scorer does: one threshold per profile optimised over the whole corpus,
// normalised so that the null detector scores 0 and a perfect one 100.
// times[rel] are the data file's timestamps and scores[rel] the detector's
// scores for each labelled file rel.
func ScoreNAB(labels map[string][][2]string, times map[string][]int64, scores map[string][]float64) (*NABResult, error) {
	rels := make([]string, 0, len(labels))
	for rel := range labels {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	if len(rels) == 0 {
		return nil, fmt.Errorf("empty corpus: no labelled files")
	}
	files := make([]*nabFile, 0, len(rels))
	res := &NABResult{Profiles: map[string]NABProfileResult{}}
	for _, rel := range rels {
		ts, ok := times[rel]
		if !ok {
			return nil, fmt.Errorf("no data for labelled file %s", rel)
		}
		sc, ok := scores[rel]
		if !ok {
			return nil, fmt.Errorf("no results for labelled file %s", rel)
		}
		if len(sc) != len(ts) {
			return nil, fmt.Errorf("%s: %d scores for %d data rows", rel, len(sc), len(ts))
		}
		for i, s := range sc {
			if math.IsNaN(s) {
				return nil, fmt.Errorf("%s row %d: anomaly_score is NaN", rel, i+2)
			}
		}
		fd, err := prepareNABFile(rel, ts, labels[rel], sc)
		if err != nil {
			return nil, err
		}
		files = append(files, fd)
		res.Files++
		res.Windows += len(fd.windows)
		res.Rows += fd.n
	}
	nScorable := 0
	for _, fd := range files {
		nScorable += fd.nScorableW
	}
	for _, p := range NABProfiles {
		thr, ok := optimiseThreshold(files, p)
		r := scoreAt(files, p, thr, ok)
		r.NullRaw = -p.FN * float64(nScorable)
		r.PerfectRaw = p.TP * float64(res.Windows)
		if r.PerfectRaw != r.NullRaw {
			r.Normalized = 100 * (r.Raw - r.NullRaw) / (r.PerfectRaw - r.NullRaw)
		}
		if ok {
			r.Threshold = thr
		} else {
			top := 0.0
			for _, fd := range files {
				for _, s := range fd.scores[fd.probation:] {
					top = math.Max(top, s)
				}
			}
			r.Threshold = 1.1
			if top >= 1.1 {
				r.Threshold = math.Nextafter(top, math.Inf(1))
			}
		}
		res.Profiles[p.Name] = r
	}
	return res, nil
}

// LoadNABCorpus reads the data file of every labelled file under dataDir
// and returns its rows keyed by relative path.
func LoadNABCorpus(dataDir string, labels map[string][][2]string) (map[string][]Row, error) {
	out := make(map[string][]Row, len(labels))
	for rel := range labels {
		rows, err := readSeriesFile(filepath.Join(dataDir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		out[rel] = rows
	}
	return out, nil
}

// readSeriesFile reads one NAB-layout CSV file.
func readSeriesFile(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := ReadSeriesCSV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// readScoresFile reads the anomaly_score column (and timestamps) of a
// results CSV.
func readScoresFile(path string) (times []int64, scores []float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return readScoresCSV(f, path)
}
