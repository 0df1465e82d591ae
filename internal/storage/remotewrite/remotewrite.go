package remotewrite

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
)

// maxErrorBody is how much of a rejecting receiver's answer goes into the
// error: enough to see VictoriaMetrics' or Prometheus' reason.
const maxErrorBody = 512

// Writer sends batches with Prometheus remote write 1.0. It is safe for
// concurrent use.
type Writer struct {
	cfg       Config
	healthURL string
	client    *http.Client
	bufs      sync.Pool // *[]byte, reused encode and compress buffers
}

var (
	_ storage.Writer        = (*Writer)(nil)
	_ storage.EncodedWriter = (*Writer)(nil)
)

// New returns a Writer for cfg, which must be valid. It loads the TLS
// files now, so a missing certificate fails at startup. The Writer keeps
// no metrics of its own: the storage.Sender in front of it counts writes.
func New(cfg Config, _ storage.Settings) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("remote write config: %w", err)
	}
	tlsCfg, err := newTLSConfig(cfg.TLS)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 16
	health := cfg.HealthURL
	if health == "" {
		u, _ := url.Parse(cfg.URL) // validated
		health = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/health"}).String()
	}
	return &Writer{
		cfg:       cfg,
		healthURL: health,
		client:    &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}, nil
}

func newTLSConfig(c TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test-only
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %q: no PEM certificates", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// URL returns the endpoint the Writer posts to.
func (w *Writer) URL() string { return w.cfg.URL }

// Write encodes batch and posts it. Invalid series (see prw.Validate) and
// 4xx answers other than 429 are permanent errors; network errors, 429 and
// 5xx are retryable.
func (w *Writer) Write(ctx context.Context, batch []novacron.Series) error {
	if len(batch) == 0 {
		return nil
	}
	raw := w.getBuf()
	defer w.putBuf(raw)
	var err error
	*raw, err = prw.AppendWriteRequest((*raw)[:0], batch)
	if err != nil {
		return novacron.Permanent(err)
	}
	return w.post(ctx, *raw)
}

// WriteEncoded posts raw, a WriteRequest prw.ScanWriteRequest accepted as
// plain, as it is: no decode, no validation, no re-encoding. Errors are
// those of Write; the receiver's own validation answers 4xx (permanent).
func (w *Writer) WriteEncoded(ctx context.Context, raw []byte, _ int) error {
	if len(raw) == 0 {
		return nil
	}
	return w.post(ctx, raw)
}

// post compresses raw and posts it.
func (w *Writer) post(ctx context.Context, raw []byte) error {
	comp := w.getBuf()
	defer w.putBuf(comp)
	*comp = prw.AppendSnappy((*comp)[:0], raw)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(*comp))
	if err != nil {
		return novacron.Permanent(fmt.Errorf("remote write request to %s: %w", w.cfg.URL, err))
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	req.Header.Set("User-Agent", "novacron")
	if err := w.authorize(req); err != nil {
		// Unreadable credentials may be fixed by a rotation: retryable.
		return err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("remote write to %s: %w", w.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	err = &StatusError{URL: w.cfg.URL, StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	if IsRetryableStatus(resp.StatusCode) {
		return err
	}
	return novacron.Permanent(err)
}

// IsRetryableStatus reports whether a remote-write answer with this
// status is worth retrying: 429 and 5xx are; every other non-2xx status
// means the receiver rejected the data itself.
func IsRetryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code/100 == 5
}

// StatusError is a non-2xx answer from the receiver.
type StatusError struct {
	URL        string
	StatusCode int
	// Body is the start of the answer, at most 512 bytes.
	Body string
}

// Error names the endpoint, the status and the receiver's reason.
func (e *StatusError) Error() string {
	return fmt.Sprintf("remote write to %s: HTTP %d: %s", e.URL, e.StatusCode, e.Body)
}

// Ping GETs the health URL and reports any non-2xx answer.
func (w *Writer) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.healthURL, nil)
	if err != nil {
		return fmt.Errorf("health check %s: %w", w.healthURL, err)
	}
	if err := w.authorize(req); err != nil {
		return err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("health check %s: %w", w.healthURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health check %s: HTTP %d: %s", w.healthURL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

func (w *Writer) authorize(req *http.Request) error {
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	switch {
	case w.cfg.BearerTokenFile != "":
		tok, err := os.ReadFile(w.cfg.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("read bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	case w.cfg.BasicAuth != nil:
		pass := ""
		if f := w.cfg.BasicAuth.PasswordFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read basic_auth.password_file: %w", err)
			}
			pass = strings.TrimSpace(string(b))
		}
		req.SetBasicAuth(w.cfg.BasicAuth.Username, pass)
	}
	return nil
}

func (w *Writer) getBuf() *[]byte {
	if b, ok := w.bufs.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// putBuf returns b to the pool unless it grew past 16 MiB, so one huge
// batch does not pin its buffer forever.
func (w *Writer) putBuf(b *[]byte) {
	if cap(*b) <= 16<<20 {
		w.bufs.Put(b)
	}
}
