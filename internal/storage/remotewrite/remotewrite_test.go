package remotewrite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopVictoriaMetrics()
	os.Exit(code)
}

func TestConfigValidate(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.URL = "http://localhost:8428/api/v1/write"
	require.NoError(t, cfg.Validate())

	require.ErrorContains(t, NewDefaultConfig().Validate(), "url is required")

	bad := Config{
		URL:             "ftp://x",
		HealthURL:       "http://",
		Headers:         map[string]string{"content-type": "x", "Authorization": "y"},
		BearerTokenFile: "/t",
		BasicAuth:       &BasicAuth{},
		TLS:             TLSConfig{CertFile: "c"},
		Timeout:         -1,
	}
	err := bad.Validate()
	for _, want := range []string{
		`url "ftp://x": scheme must be http or https`,
		`health_url "http://": no host`,
		`headers: "content-type" is set by remote write itself`,
		`headers: "Authorization" conflicts`,
		"bearer_token_file and basic_auth are mutually exclusive",
		"basic_auth.username is required",
		"tls.cert_file and tls.key_file must be set together",
		"timeout must be >= 0",
	} {
		require.ErrorContains(t, err, want)
	}
}

func testBatch(name string) []novacron.Series {
	return []novacron.Series{{
		Labels:  novacron.Labels{{Name: "__name__", Value: name}, {Name: "vm_id", Value: "vm-1"}},
		Samples: []novacron.Sample{{T: 1000, V: 1}},
	}}
}

// TestWriteRequestShape checks the wire format and headers against a
// recording receiver, including auth read from files.
func TestWriteRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))

	cfg := NewDefaultConfig()
	cfg.URL = srv.URL + "/api/v1/write"
	cfg.Headers = map[string]string{"X-Scope-OrgID": "t1"}
	cfg.BasicAuth = &BasicAuth{Username: "nova", PasswordFile: pw}
	w, err := New(cfg, storage.Settings{})
	require.NoError(t, err)
	batch := testBatch("up")
	require.NoError(t, w.Write(context.Background(), batch))

	require.Equal(t, http.MethodPost, got.Method)
	require.Equal(t, "/api/v1/write", got.URL.Path)
	require.Equal(t, "snappy", got.Header.Get("Content-Encoding"))
	require.Equal(t, "application/x-protobuf", got.Header.Get("Content-Type"))
	require.Equal(t, "0.1.0", got.Header.Get("X-Prometheus-Remote-Write-Version"))
	require.Equal(t, "t1", got.Header.Get("X-Scope-OrgID"))
	user, pass, ok := got.BasicAuth()
	require.True(t, ok)
	require.Equal(t, "nova", user)
	require.Equal(t, "s3cret", pass)

	raw, err := prw.AppendUnsnappy(nil, body, 0)
	require.NoError(t, err)
	decoded, err := prw.DecodeWriteRequest(raw, nil)
	require.NoError(t, err)
	require.Equal(t, batch, decoded)

	// Bearer token, re-read per request.
	tok := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(tok, []byte("one"), 0o600))
	cfg.BasicAuth = nil
	cfg.BearerTokenFile = tok
	w, err = New(cfg, storage.Settings{})
	require.NoError(t, err)
	require.NoError(t, w.Write(context.Background(), batch))
	require.Equal(t, "Bearer one", got.Header.Get("Authorization"))
	require.NoError(t, os.WriteFile(tok, []byte("two"), 0o600))
	require.NoError(t, w.Write(context.Background(), batch))
	require.Equal(t, "Bearer two", got.Header.Get("Authorization"))
}

// TestWriteEncodedForwardsBytes checks that WriteEncoded posts exactly
// the given request, snappy-compressed, with the headers of Write, and
// classifies answers as Write does.
func TestWriteEncodedForwardsBytes(t *testing.T) {
	var got *http.Request
	var body []byte
	status := http.StatusNoContent
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	w, err := New(Config{URL: srv.URL + "/api/v1/write"}, storage.Settings{})
	require.NoError(t, err)

	a, err := prw.AppendWriteRequest(nil, testBatch("up"))
	require.NoError(t, err)
	b, err := prw.AppendWriteRequest(nil, testBatch("down"))
	require.NoError(t, err)
	joined := append(append([]byte(nil), a...), b...)
	require.NoError(t, w.WriteEncoded(context.Background(), joined, 2))
	require.Equal(t, "snappy", got.Header.Get("Content-Encoding"))
	require.Equal(t, "0.1.0", got.Header.Get("X-Prometheus-Remote-Write-Version"))
	raw, err := prw.AppendUnsnappy(nil, body, 0)
	require.NoError(t, err)
	require.Equal(t, joined, raw)

	status = http.StatusBadRequest
	err = w.WriteEncoded(context.Background(), joined, 2)
	require.True(t, novacron.IsPermanent(err))
	status = http.StatusServiceUnavailable
	err = w.WriteEncoded(context.Background(), joined, 2)
	require.Error(t, err)
	require.False(t, novacron.IsPermanent(err))
}

func TestWriteErrorClassification(t *testing.T) {
	f := func(status int, permanent bool) {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, fmt.Sprintf("reason for %d", status), status)
		}))
		defer srv.Close()
		w, err := New(Config{URL: srv.URL}, storage.Settings{})
		require.NoError(t, err)
		err = w.Write(context.Background(), testBatch("up"))
		require.Error(t, err)
		require.Equal(t, permanent, novacron.IsPermanent(err), "status %d: %v", status, err)
		require.ErrorContains(t, err, fmt.Sprintf("HTTP %d: reason for %d", status, status))
		var se *StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, status, se.StatusCode)
	}
	f(400, true)
	f(401, true)
	f(404, true)
	f(413, true)
	f(429, false)
	f(500, false)
	f(503, false)

	// Network error: retryable.
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	w, err := New(Config{URL: u}, storage.Settings{})
	require.NoError(t, err)
	err = w.Write(context.Background(), testBatch("up"))
	require.Error(t, err)
	require.False(t, novacron.IsPermanent(err))

	// Invalid series never reach the wire: permanent.
	err = w.Write(context.Background(), []novacron.Series{{Labels: novacron.Labels{{Name: "x", Value: "y"}}}})
	require.True(t, novacron.IsPermanent(err))
	require.ErrorIs(t, err, prw.ErrInvalid)
}

func TestPingHealthURL(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/-/healthy" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	w, err := New(Config{URL: srv.URL + "/insert/0/prometheus/api/v1/write"}, storage.Settings{})
	require.NoError(t, err)
	require.NoError(t, w.Ping(context.Background()))
	require.Equal(t, []string{"/health"}, paths)

	w, err = New(Config{URL: srv.URL + "/api/v1/write", HealthURL: srv.URL + "/-/healthy"}, storage.Settings{})
	require.NoError(t, err)
	require.ErrorContains(t, w.Ping(context.Background()), "HTTP 503: not ready")
}

// TestVictoriaMetrics writes to a real VictoriaMetrics and reads the
// samples back with /api/v1/export.
func TestVictoriaMetrics(t *testing.T) {
	vm := testserver.VictoriaMetrics(t)
	w, err := New(Config{URL: vm.WriteURL(), Timeout: 10 * time.Second}, storage.Settings{})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, w.Ping(ctx))

	now := time.Now().Truncate(time.Second).UnixMilli()
	var batch []novacron.Series
	for i := range 3 {
		s := novacron.Series{Labels: novacron.Labels{
			{Name: "__name__", Value: "novacron_rw_test_value"},
			{Name: "vm_id", Value: fmt.Sprintf("vm-%d", i)},
		}}
		for j := range 5 {
			s.Samples = append(s.Samples, novacron.Sample{T: now - int64(5-j)*15000, V: float64(i*100 + j)})
		}
		batch = append(batch, s)
	}
	require.NoError(t, w.Write(ctx, batch))
	// Writing the same batch again stores nothing new (dedup).
	require.NoError(t, w.Write(ctx, batch))
	require.NoError(t, vm.ForceFlush())

	got := exportVM(t, vm.URL(), `{__name__="novacron_rw_test_value"}`)
	require.Len(t, got, 3)
	for i := range 3 {
		key := fmt.Sprintf("vm-%d", i)
		require.Equal(t, batch[i].Samples, got[key], key)
	}

	// Records' requests joined and forwarded are stored like a batch.
	var joined []byte
	for i := range batch {
		one := []novacron.Series{{Labels: novacron.Labels{
			{Name: "__name__", Value: "novacron_rw_test_forwarded"}, batch[i].Labels[1],
		}, Samples: batch[i].Samples}}
		joined, err = prw.AppendWriteRequest(joined, one)
		require.NoError(t, err)
	}
	require.NoError(t, w.WriteEncoded(ctx, joined, 15))
	require.NoError(t, vm.ForceFlush())
	got = exportVM(t, vm.URL(), `{__name__="novacron_rw_test_forwarded"}`)
	require.Len(t, got, 3)
	for i := range 3 {
		key := fmt.Sprintf("vm-%d", i)
		require.Equal(t, batch[i].Samples, got[key], key)
	}

	// VictoriaMetrics rejects a malformed body with 400: permanent.
	req, err := http.NewRequest(http.MethodPost, vm.WriteURL(), strings.NewReader("garbage"))
	require.NoError(t, err)
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.False(t, IsRetryableStatus(resp.StatusCode))
}

// exportVM returns the samples of the series matching selector, keyed by
// their vm_id label.
func exportVM(t *testing.T, base, selector string) map[string][]novacron.Sample {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/export?match[]=" + url.QueryEscape(selector))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string][]novacron.Sample{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		key := line.Metric["vm_id"]
		for i := range line.Values {
			out[key] = append(out[key], novacron.Sample{T: line.Timestamps[i], V: line.Values[i]})
		}
	}
	require.NoError(t, sc.Err())
	return out
}
