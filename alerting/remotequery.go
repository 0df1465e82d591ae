package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"

	"github.com/novacron/novacron/internal/storage/promapi"
)

// remoteQueryFunc evaluates instant queries through a Prometheus HTTP API
// (VictoriaMetrics single node, or vmselect with a tenant).
func remoteQueryFunc(cfg promapi.ProxyConfig, client *http.Client) (rules.QueryFunc, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("remote query config: %w", err)
	}
	u, _ := url.Parse(cfg.URL) // validated
	base := strings.TrimSuffix(u.String(), "/")
	if cfg.Tenant != "" {
		base += "/select/" + cfg.Tenant + "/prometheus"
	}
	endpoint := base + "/api/v1/query"
	return func(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
		if cfg.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
		}
		form := url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", u.Host, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
		if err != nil {
			return nil, fmt.Errorf("query %s: read answer: %w", u.Host, err)
		}
		return decodeQueryResponse(body, resp.StatusCode)
	}, nil
}

type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// decodeQueryResponse turns an instant query's JSON answer into a vector
// (a scalar becomes a one-sample vector without labels, as in
// rules.EngineQueryFunc).
func decodeQueryResponse(body []byte, status int) (promql.Vector, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		if len(body) > 200 {
			body = body[:200]
		}
		return nil, fmt.Errorf("query answer (HTTP %d) is not JSON: %q", status, body)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query failed (HTTP %d, %s): %s", status, r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var res []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &res); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		out := make(promql.Vector, 0, len(res))
		for _, s := range res {
			t, v, err := decodePoint(s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, promql.Sample{Metric: labels.FromMap(s.Metric), T: t, F: v})
		}
		return out, nil
	case "scalar":
		var p [2]any
		if err := json.Unmarshal(r.Data.Result, &p); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		t, v, err := decodePoint(p)
		if err != nil {
			return nil, err
		}
		return promql.Vector{{Metric: labels.EmptyLabels(), T: t, F: v}}, nil
	default:
		return nil, fmt.Errorf("rule result is %q, not a vector or scalar", r.Data.ResultType)
	}
}

func decodePoint(p [2]any) (int64, float64, error) {
	ts, ok := p[0].(float64)
	if !ok {
		return 0, 0, fmt.Errorf("bad sample time %v", p[0])
	}
	s, ok := p[1].(string)
	if !ok {
		return 0, 0, fmt.Errorf("bad sample value %v", p[1])
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("bad sample value %q: %w", s, err)
	}
	return int64(ts * 1000), v, nil
}
