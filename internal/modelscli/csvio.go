package modelscli

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxCSVLine caps one CSV record so a corrupt file cannot exhaust memory.
const maxCSVLine = 1 << 20

// Row is one row of a NAB-layout series file.
type Row struct {
	// Timestamp is the timestamp text exactly as read, written back unchanged.
	Timestamp string
	// T is the parsed timestamp in milliseconds since the Unix epoch (UTC).
	T int64
	// V is the value; NaN when the cell was empty, "NaN" or "NA".
	V float64
}

// timeLayouts are the timestamp forms accepted in series files.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	time.RFC3339Nano,
}

// ParseTimestamp parses a series timestamp (NAB's "YYYY-MM-DD HH:MM:SS[.ffffff]",
// ISO 8601 with T or a zone, or Unix seconds) into milliseconds since the epoch.
func ParseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e13 {
		return int64(f * 1000), nil
	}
	return 0, fmt.Errorf("cannot parse timestamp %q", s)
}

// parseValue parses a numeric cell; empty, NA and NaN cells give NaN.
func parseValue(s string) (float64, error) {
	s = strings.TrimSpace(strings.Trim(strings.TrimSpace(s), `"`))
	switch strings.ToUpper(s) {
	case "", "NA", "NAN", "NULL":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// ReadSeriesCSV reads a NAB-layout CSV: a header naming at least the
// columns timestamp and value (any order, other columns ignored), then one
// row per sample. Rows are returned in file order; timestamps may repeat or
// go backwards.
func ReadSeriesCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(bufio.NewReader(io.LimitReader(r, 1<<34)))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty file: no header")
		}
		return nil, fmt.Errorf("read header: %w", err)
	}
	ti, vi := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "timestamp":
			ti = i
		case "value":
			vi = i
		}
	}
	if ti < 0 || vi < 0 {
		return nil, fmt.Errorf("header %q lacks timestamp and value columns", strings.Join(header, ","))
	}
	var rows []Row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if ti >= len(rec) || vi >= len(rec) {
			return nil, fmt.Errorf("line %d: %d fields, want at least %d", line, len(rec), max(ti, vi)+1)
		}
		if len(rec[ti]) > maxCSVLine {
			return nil, fmt.Errorf("line %d: field too long", line)
		}
		t, err := ParseTimestamp(rec[ti])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		v, err := parseValue(rec[vi])
		if err != nil {
			return nil, fmt.Errorf("line %d: value %q: %w", line, rec[vi], err)
		}
		rows = append(rows, Row{Timestamp: strings.Clone(rec[ti]), T: t, V: v})
	}
	return rows, nil
}

// WriteScoresCSV writes timestamp,value,anomaly_score rows. Values are
// written in their shortest round-trip form; NaN values as empty cells.
func WriteScoresCSV(w io.Writer, rows []Row, scores []float64) error {
	if len(rows) != len(scores) {
		return fmt.Errorf("%d rows but %d scores", len(rows), len(scores))
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("timestamp,value,anomaly_score\n")
	var buf []byte
	for i, r := range rows {
		buf = buf[:0]
		buf = append(buf, r.Timestamp...)
		buf = append(buf, ',')
		if !math.IsNaN(r.V) {
			buf = strconv.AppendFloat(buf, r.V, 'g', -1, 64)
		}
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, scores[i], 'g', -1, 64)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}

// M4Series is one series of an M4-layout file.
type M4Series struct {
	// ID is the series id, e.g. H1.
	ID string
	// Values are the observations in time order, trailing empty cells removed.
	Values []float64
}

// ReadM4CSV reads an M4-layout file (train, test or forecasts): an optional
// header row ("V1",... or id,F1,...), then one row per series, the id first
// and the values after it; trailing empty cells are ignored. A gap inside a
// series, a non-numeric cell or a repeated id is an error.
func ReadM4CSV(r io.Reader) ([]M4Series, error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	var out []M4Series
	seen := map[string]bool{}
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if len(rec) == 0 {
			continue
		}
		id := strings.TrimSpace(strings.Trim(strings.TrimSpace(rec[0]), `"`))
		if id == "" {
			continue
		}
		if line == 1 {
			if u := strings.ToUpper(id); u == "V1" || u == "ID" {
				continue
			}
		}
		vals := make([]float64, 0, len(rec)-1)
		for _, c := range rec[1:] {
			v, err := parseValue(c)
			if err != nil {
				return nil, fmt.Errorf("line %d (series %s): value %q: %w", line, id, c, err)
			}
			vals = append(vals, v)
		}
		for len(vals) > 0 && math.IsNaN(vals[len(vals)-1]) {
			vals = vals[:len(vals)-1]
		}
		for _, v := range vals {
			if math.IsNaN(v) {
				return nil, fmt.Errorf("line %d: gap inside series %s", line, id)
			}
		}
		if seen[id] {
			return nil, fmt.Errorf("line %d: duplicate series id %s", line, id)
		}
		seen[id] = true
		out = append(out, M4Series{ID: id, Values: vals})
	}
	return out, nil
}

// WriteM4Forecasts writes forecasts in the M4 submission layout:
// id,F1..Fh then one row per series.
func WriteM4Forecasts(w io.Writer, ids []string, fc [][]float64) error {
	if len(ids) != len(fc) {
		return fmt.Errorf("%d ids but %d forecasts", len(ids), len(fc))
	}
	h := 0
	for _, f := range fc {
		h = max(h, len(f))
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("id")
	for i := 1; i <= h; i++ {
		fmt.Fprintf(bw, ",F%d", i)
	}
	bw.WriteByte('\n')
	var buf []byte
	for i, id := range ids {
		buf = append(buf[:0], id...)
		for _, v := range fc[i] {
			buf = append(buf, ',')
			buf = strconv.AppendFloat(buf, v, 'g', 10, 64)
		}
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}

// readScoresCSV reads the timestamp and anomaly_score columns of a
// detector results CSV; name is used in errors.
func readScoresCSV(r io.Reader, name string) (times []int64, scores []float64, err error) {
	cr := csv.NewReader(bufio.NewReader(r))
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: read header: %w", name, err)
	}
	ti, si := -1, -1
	for i, h := range header {
		switch strings.TrimSpace(h) {
		case "timestamp":
			ti = i
		case "anomaly_score":
			si = i
		}
	}
	if ti < 0 || si < 0 {
		return nil, nil, fmt.Errorf("%s: header lacks timestamp and anomaly_score columns", name)
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if ti >= len(rec) || si >= len(rec) {
			return nil, nil, fmt.Errorf("%s line %d: too few fields", name, line)
		}
		t, err := ParseTimestamp(rec[ti])
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(rec[si]), 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: anomaly_score: %w", name, line, err)
		}
		times = append(times, t)
		scores = append(scores, s)
	}
	return times, scores, nil
}
