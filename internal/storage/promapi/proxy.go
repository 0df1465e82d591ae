package promapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// ProxyConfig configures the production-mode query API, which forwards to
// VictoriaMetrics.
type ProxyConfig struct {
	// URL is VictoriaMetrics' base URL: a single node
	// (http://victoriametrics:8428) or vmselect (http://vmselect:8481).
	// Required.
	URL string `yaml:"url"`
	// Tenant, when set, addresses a cluster: requests go to
	// <url>/select/<tenant>/prometheus/api/v1/... Default "" (single node:
	// <url>/api/v1/...).
	Tenant string `yaml:"tenant"`
	// Timeout bounds each forwarded request. Default 2m; 0 means none
	// beyond the caller's.
	Timeout time.Duration `yaml:"timeout"`
}

// NewDefaultProxyConfig returns the defaults; URL must still be set.
func NewDefaultProxyConfig() ProxyConfig { return ProxyConfig{Timeout: 2 * time.Minute} }

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg.
func (cfg ProxyConfig) Validate() error {
	var errs []error
	if cfg.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else if u, err := url.Parse(cfg.URL); err != nil {
		errs = append(errs, fmt.Errorf("url %q: %w", cfg.URL, err))
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url %q: must be an http or https URL with a host", cfg.URL))
	}
	if strings.ContainsAny(cfg.Tenant, "/?#") {
		errs = append(errs, fmt.Errorf("tenant %q: must not contain '/', '?' or '#'", cfg.Tenant))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must be >= 0, got %s", cfg.Timeout))
	}
	return errors.Join(errs...)
}

// Proxy forwards the query API's endpoints to VictoriaMetrics, which
// answers them in Prometheus' shapes, so clients see the same API in
// embedded and production modes. Other paths get a not_found error
// without reaching VictoriaMetrics.
type Proxy struct {
	target  *url.URL
	rp      *httputil.ReverseProxy
	timeout time.Duration
}

// NewProxy returns a Proxy for cfg, which must be valid.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("query proxy config: %w", err)
	}
	target, _ := url.Parse(cfg.URL) // validated
	base := strings.TrimSuffix(target.Path, "/")
	if cfg.Tenant != "" {
		base += "/select/" + cfg.Tenant + "/prometheus"
	}
	p := &Proxy{target: target, timeout: cfg.Timeout}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ep, _ := endpoint(pr.In.URL.Path)
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = target.Host
			pr.Out.URL.Path = base + "/api/v1/" + ep
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			pr.Out.Host = target.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			WriteError(w, ErrorUnavailable, fmt.Errorf("query backend %s: %w", target.Host, err))
		},
	}
	return p, nil
}

// ServeHTTP forwards GET and POST requests for /api/v1/query,
// /api/v1/query_range, /api/v1/series, /api/v1/labels and
// /api/v1/label/<name>/values.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, ok := endpoint(r.URL.Path)
	_, isValues := labelValuesName(ep)
	if !ok || !(ep == "query" || ep == "query_range" || ep == "series" || ep == "labels" || isValues) {
		WriteError(w, ErrorNotFound, fmt.Errorf("unknown path %q", r.URL.Path))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		WriteError(w, ErrorBadData, fmt.Errorf("method %s not allowed", r.Method))
		return
	}
	if p.timeout > 0 {
		ctx, cancel := contextWithTimeout(r, p.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	p.rp.ServeHTTP(w, r)
}
