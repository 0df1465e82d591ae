package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"time"

	"github.com/novacron/novacron"
)

// queryOne evaluates a PromQL expression at t through the process's
// Prometheus API handler (the embedded engine or the proxy to
// VictoriaMetrics) and returns its single value: a scalar, or a vector
// of one element. An empty result is ENOTFOUND; several elements are
// EINVALID.
func queryOne(ctx context.Context, h http.Handler, expr string, t time.Time) (float64, error) {
	form := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/query?"+form.Encode(), nil)
	if err != nil {
		return 0, err
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		return 0, fmt.Errorf("query %q: undecodable response (HTTP %d): %w", expr, rec.Code, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query %q: %s", expr, r.Error)
	}
	var pair [2]any
	switch r.Data.ResultType {
	case "scalar":
		if err := json.Unmarshal(r.Data.Result, &pair); err != nil {
			return 0, err
		}
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return 0, err
		}
		switch len(v) {
		case 0:
			return 0, novacron.Errorf(novacron.ENOTFOUND, "query %q returned no series", expr)
		case 1:
			pair = v[0].Value
		default:
			return 0, novacron.Errorf(novacron.EINVALID, "query %q returned %d series, want one", expr, len(v))
		}
	default:
		return 0, novacron.Errorf(novacron.EINVALID, "query %q returned a %s, want a scalar or one series", expr, r.Data.ResultType)
	}
	return strconv.ParseFloat(fmt.Sprint(pair[1]), 64)
}
