package promapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
)

// Error types of the Prometheus API, the errorType field of an error
// answer.
const (
	ErrorBadData     = "bad_data"
	ErrorExec        = "execution"
	ErrorTimeout     = "timeout"
	ErrorCanceled    = "canceled"
	ErrorInternal    = "internal"
	ErrorNotFound    = "not_found"
	ErrorUnavailable = "unavailable"
)

// statusClientClosed is the non-standard status Prometheus answers a
// canceled query with.
const statusClientClosed = 499

func errorStatus(typ string) int {
	switch typ {
	case ErrorBadData:
		return http.StatusBadRequest
	case ErrorExec:
		return http.StatusUnprocessableEntity
	case ErrorCanceled:
		return statusClientClosed
	case ErrorTimeout, ErrorUnavailable:
		return http.StatusServiceUnavailable
	case ErrorNotFound:
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// response is the envelope of every answer.
type response struct {
	Status    string   `json:"status"`
	Data      any      `json:"data,omitempty"`
	ErrorType string   `json:"errorType,omitempty"`
	Error     string   `json:"error,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Infos     []string `json:"infos,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeSuccess(w http.ResponseWriter, data any, warnings, infos []string) {
	writeJSON(w, http.StatusOK, response{Status: "success", Data: data, Warnings: warnings, Infos: infos})
}

// WriteError writes a Prometheus API error answer with the status code
// Prometheus uses for typ.
func WriteError(w http.ResponseWriter, typ string, err error) {
	writeJSON(w, errorStatus(typ), response{Status: "error", ErrorType: typ, Error: err.Error()})
}

// queryData is the data of a query or query_range answer.
type queryData struct {
	ResultType string `json:"resultType"`
	Result     any    `json:"result"`
}

// point is [<unix seconds>, "<value>"].
type point struct {
	T int64
	F float64
}

func (p point) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 40)
	b = append(b, '[')
	b = appendTimestamp(b, p.T)
	b = append(b, ',', '"')
	b = appendFloat(b, p.F)
	b = append(b, '"', ']')
	return b, nil
}

// stringPoint is [<unix seconds>, "<string>"].
type stringPoint struct {
	T int64
	S string
}

func (p stringPoint) MarshalJSON() ([]byte, error) {
	s, err := json.Marshal(p.S)
	if err != nil {
		return nil, err
	}
	b := []byte{'['}
	b = appendTimestamp(b, p.T)
	b = append(b, ',')
	b = append(b, s...)
	return append(b, ']'), nil
}

// appendTimestamp writes milliseconds as seconds with up to three
// decimals, as Prometheus does ("1700000000.5" is written "1700000000.500").
func appendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func labelsMap(ls labels.Labels) map[string]string {
	m := make(map[string]string, ls.Len())
	ls.Range(func(l labels.Label) { m[l.Name] = l.Value })
	return m
}

type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  point             `json:"value"`
}

type matrixSeries struct {
	Metric map[string]string `json:"metric"`
	Values []point           `json:"values"`
}

// encodeValue turns a PromQL result into the shapes of the API. Native
// histograms are not stored by NovaCron; histogram points are skipped.
func encodeValue(v any) any {
	switch v := v.(type) {
	case promql.Vector:
		out := make([]vectorSample, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				continue
			}
			out = append(out, vectorSample{Metric: labelsMap(s.Metric), Value: point{T: s.T, F: s.F}})
		}
		return out
	case promql.Matrix:
		out := make([]matrixSeries, 0, len(v))
		for _, s := range v {
			ms := matrixSeries{Metric: labelsMap(s.Metric), Values: make([]point, 0, len(s.Floats))}
			for _, f := range s.Floats {
				ms.Values = append(ms.Values, point{T: f.T, F: f.F})
			}
			if len(ms.Values) > 0 {
				out = append(out, ms)
			}
		}
		return out
	case promql.Scalar:
		return point{T: v.T, F: v.V}
	case promql.String:
		return stringPoint{T: v.T, S: v.V}
	}
	return nil
}
