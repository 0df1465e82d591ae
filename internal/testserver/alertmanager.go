package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AlertmanagerBinaryEnv names the environment variable that points at an
// Alertmanager binary; by default prometheus-alertmanager (Debian's
// package of that name) or alertmanager is looked up in PATH.
const AlertmanagerBinaryEnv = "NOVACRON_ALERTMANAGER"

// Alertmanager is a real Alertmanager on 127.0.0.1 with gossip disabled
// and its own storage, routing every alert, one notification group per
// alert (group_by: ['...']), to a webhook receiver that this package
// serves and records.
type Alertmanager struct {
	root string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	hook *http.Server

	mu       sync.Mutex
	received [][]byte
	notify   chan struct{}
}

var (
	sharedAMOnce sync.Once
	sharedAM     *Alertmanager
	sharedAMErr  error
)

// AlertmanagerServer returns the Alertmanager shared by every test of the
// binary, starting it on first use; it stays up until StopAlertmanager,
// which TestMain should call. Tests sharing it keep apart by alert labels.
// When the binary is missing or does not start, tb is failed or skipped
// through Unavailable.
func AlertmanagerServer(tb testing.TB) *Alertmanager {
	tb.Helper()
	sharedAMOnce.Do(func() { sharedAM, sharedAMErr = startAlertmanager() })
	if sharedAMErr != nil {
		Unavailable(tb, "Alertmanager", sharedAMErr)
	}
	return sharedAM
}

// StopAlertmanager stops the shared Alertmanager and its webhook receiver
// and removes its storage. Call it from TestMain after m.Run.
func StopAlertmanager() {
	if sharedAM != nil {
		sharedAM.stop()
	}
}

func amBinary() (string, error) {
	if p := os.Getenv(AlertmanagerBinaryEnv); p != "" {
		return p, nil
	}
	for _, n := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("alertmanager binary not found (apt-get install prometheus-alertmanager, or set %s)", AlertmanagerBinaryEnv)
}

const amConfig = `route:
  receiver: recorder
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: recorder
    webhook_configs:
      - url: %s
        send_resolved: true
`

func startAlertmanager() (*Alertmanager, error) {
	bin, err := amBinary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "novacron-am-")
	if err != nil {
		return nil, err
	}
	am := &Alertmanager{root: root, notify: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	am.hook = &http.Server{Handler: http.HandlerFunc(am.record), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = am.hook.Serve(ln) }()
	cfgPath := filepath.Join(root, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, amConfig, "http://"+ln.Addr().String()+"/hook"), 0o644); err != nil {
		am.stop()
		return nil, err
	}
	var lastErr error
	for range 3 {
		port, err := vmFreePort()
		if err != nil {
			am.stop()
			return nil, err
		}
		am.port = port
		if lastErr = am.start(bin, cfgPath); lastErr == nil {
			return am, nil
		}
	}
	am.stop()
	return nil, lastErr
}

func (am *Alertmanager) start(bin, cfgPath string) error {
	logPath := filepath.Join(am.root, "alertmanager.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.path="+filepath.Join(am.root, "data"),
		"--web.listen-address="+am.addr(),
		"--web.external-url="+am.URL(),
		"--cluster.listen-address=",
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("alertmanager on %s exited at startup: %s", am.addr(), tail(b))
		default:
		}
		resp, err := http.Get(am.URL() + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				am.cmd, am.done = cmd, done
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("alertmanager on %s not ready after 30s: %s", am.addr(), tail(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (am *Alertmanager) record(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	am.mu.Lock()
	am.received = append(am.received, b)
	close(am.notify)
	am.notify = make(chan struct{})
	am.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (am *Alertmanager) stop() {
	if am.cmd != nil {
		_ = am.cmd.Process.Signal(os.Interrupt)
		select {
		case <-am.done:
		case <-time.After(10 * time.Second):
			_ = am.cmd.Process.Kill()
			<-am.done
		}
		am.cmd = nil
	}
	if am.hook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = am.hook.Shutdown(ctx)
		cancel()
	}
	_ = os.RemoveAll(am.root)
}

func (am *Alertmanager) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(am.port)) }

// URL returns the Alertmanager's base URL; its API v2 is under
// URL()+"/api/v2".
func (am *Alertmanager) URL() string { return "http://" + am.addr() }

// Webhooks returns every webhook payload (Alertmanager's JSON, version
// "4") the receiver has been sent so far, oldest first.
func (am *Alertmanager) Webhooks() [][]byte {
	am.mu.Lock()
	defer am.mu.Unlock()
	out := make([][]byte, len(am.received))
	copy(out, am.received)
	return out
}

// ErrNoWebhook is returned by WaitWebhook when no matching payload came.
var ErrNoWebhook = errors.New("no matching webhook payload")

// WaitWebhook waits up to timeout for a webhook payload for which match
// returns true (payloads already received count) and returns it.
func (am *Alertmanager) WaitWebhook(timeout time.Duration, match func(payload []byte) bool) ([]byte, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		am.mu.Lock()
		recv, ch := am.received, am.notify
		am.mu.Unlock()
		for ; seen < len(recv); seen++ {
			if match(recv[seen]) {
				return bytes.Clone(recv[seen]), nil
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			return nil, fmt.Errorf("%w within %s (%d received)", ErrNoWebhook, timeout, seen)
		}
	}
}
