package remotewrite

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Config configures a remote-write Writer.
type Config struct {
	// URL is the remote-write endpoint, for example
	// http://victoriametrics:8428/api/v1/write. Required.
	URL string `yaml:"url"`
	// HealthURL is fetched with GET by Ping; any 2xx is healthy. Default ""
	// means <scheme>://<host>/health, VictoriaMetrics' health endpoint
	// (use /-/healthy for Prometheus).
	HealthURL string `yaml:"health_url"`
	// Headers are added to every request. Default none. They may not set
	// Content-Type, Content-Encoding or X-Prometheus-Remote-Write-Version,
	// nor Authorization when bearer_token_file or basic_auth is set.
	Headers map[string]string `yaml:"headers"`
	// BearerTokenFile names a file whose trimmed content is sent as
	// "Authorization: Bearer <token>". It is re-read for every request so
	// tokens can rotate. Default "" (none).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BasicAuth sends HTTP basic auth. Default none.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// TLS configures HTTPS. Default: system roots, no client certificate.
	TLS TLSConfig `yaml:"tls"`
	// Timeout bounds each HTTP request, including reading the answer.
	// Default 30s; 0 means no timeout beyond the caller's context.
	Timeout time.Duration `yaml:"timeout"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	// Username is required when basic_auth is present.
	Username string `yaml:"username"`
	// PasswordFile names a file whose trimmed content is the password,
	// re-read for every request. Default "" (empty password).
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig configures the client side of TLS.
type TLSConfig struct {
	// CAFile is a PEM bundle of roots to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key (PEM); both
	// or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks. Default false; for
	// tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// NewDefaultConfig returns the defaults; URL must still be set.
func NewDefaultConfig() Config {
	return Config{Timeout: 30 * time.Second}
}

var reservedHeaders = []string{"Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version"}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg and reads no files.
func (cfg Config) Validate() error {
	var errs []error
	checkURL := func(key, raw string) {
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %q: %w", key, raw, err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("%s %q: scheme must be http or https", key, raw))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("%s %q: no host", key, raw))
		}
	}
	if cfg.URL == "" {
		errs = append(errs, errors.New("url is required"))
	} else {
		checkURL("url", cfg.URL)
	}
	if cfg.HealthURL != "" {
		checkURL("health_url", cfg.HealthURL)
	}
	for name := range cfg.Headers {
		canon := http.CanonicalHeaderKey(name)
		for _, r := range reservedHeaders {
			if canon == r {
				errs = append(errs, fmt.Errorf("headers: %q is set by remote write itself", name))
			}
		}
		if canon == "Authorization" && (cfg.BearerTokenFile != "" || cfg.BasicAuth != nil) {
			errs = append(errs, fmt.Errorf("headers: %q conflicts with bearer_token_file or basic_auth", name))
		}
	}
	if cfg.BearerTokenFile != "" && cfg.BasicAuth != nil {
		errs = append(errs, errors.New("bearer_token_file and basic_auth are mutually exclusive"))
	}
	if cfg.BasicAuth != nil && cfg.BasicAuth.Username == "" {
		errs = append(errs, errors.New("basic_auth.username is required"))
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file and tls.key_file must be set together"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must be >= 0, got %s", cfg.Timeout))
	}
	return errors.Join(errs...)
}
