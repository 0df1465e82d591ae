package testserver

import (
	"errors"
	"fmt"
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

// MotoBinaryEnv names the environment variable that points at a
// moto_server executable; by default it is .cache/moto-venv/bin/moto_server
// (installed by scripts/test-deps-aws.sh), then moto_server in PATH.
const MotoBinaryEnv = "NOVACRON_MOTO_SERVER"

// MotoRegion is the region tests use by default against moto.
const MotoRegion = "us-east-1"

// Moto is a moto_server (PyPI moto[server]) on 127.0.0.1: an in-memory
// emulation of the AWS APIs (EC2, CloudWatch, STS, ...) that the real AWS
// SDK talks to when its base endpoint is URL(). Any access key is accepted.
type Moto struct {
	bin     string
	port    int
	logPath string
	dir     string // removed by Stop; set by StartMoto only

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	sharedMotoOnce sync.Once
	sharedMoto     *Moto
	sharedMotoErr  error
	sharedMotoDir  string
)

// MotoServer returns the moto_server shared by every test of the binary,
// starting it on first use. Tests sharing it keep their resources apart
// (own tags, own instances) or call Reset first and run one at a time. It
// runs until StopMoto, which TestMain should call after m.Run. When moto
// cannot be started, tb fails or skips through Unavailable.
func MotoServer(tb testing.TB) *Moto {
	tb.Helper()
	sharedMotoOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novacron-moto-")
		if err != nil {
			sharedMotoErr = err
			return
		}
		sharedMotoDir = dir
		sharedMoto, sharedMotoErr = startMoto(dir)
	})
	if sharedMotoErr != nil {
		Unavailable(tb, "moto_server", sharedMotoErr)
	}
	return sharedMoto
}

// StopMoto stops the shared moto_server, if one was started, and removes
// its log. Call it from TestMain after m.Run.
func StopMoto() {
	if sharedMoto != nil {
		_ = sharedMoto.stop()
	}
	if sharedMotoDir != "" {
		_ = os.RemoveAll(sharedMotoDir)
	}
}

// StartMoto starts a moto_server of the caller's own, for tools outside
// tests (the AWS cost benchmark). Stop it with Stop.
func StartMoto() (*Moto, error) {
	dir, err := os.MkdirTemp("", "novacron-moto-")
	if err != nil {
		return nil, err
	}
	m, err := startMoto(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	m.dir = dir
	return m, nil
}

// Stop stops a server started by StartMoto and removes its log.
func (m *Moto) Stop() error {
	err := m.stop()
	if m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
	return err
}

func motoBinary() (string, error) {
	if p := os.Getenv(MotoBinaryEnv); p != "" {
		return p, nil
	}
	p := filepath.Join(CacheDir(), "moto-venv", "bin", "moto_server")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	p, err := exec.LookPath("moto_server")
	if err != nil {
		return "", fmt.Errorf("moto_server not found (run scripts/test-deps-aws.sh, or set %s): %w", MotoBinaryEnv, err)
	}
	return p, nil
}

// startMoto picks a free loopback port and starts moto_server on it,
// trying another port when the first was taken meanwhile (moto_server
// cannot bind port 0 and report it).
func startMoto(dir string) (*Moto, error) {
	bin, err := motoBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		port, err := motoFreePort()
		if err != nil {
			return nil, err
		}
		m := &Moto{bin: bin, port: port, logPath: filepath.Join(dir, "moto.log")}
		if lastErr = m.start(); lastErr == nil {
			return m, nil
		}
	}
	return nil, lastErr
}

func (m *Moto) start() error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.bin, "-H", "127.0.0.1", "-p", strconv.Itoa(m.port))
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("moto_server on %s exited at startup: %s", m.addr(), motoLogTail(m.logPath))
		default:
		}
		resp, err := http.Get(m.URL() + "/moto-api/data.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("moto_server on %s not ready after 60s: %s", m.addr(), motoLogTail(m.logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	return nil
}

func (m *Moto) stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return nil
	}
	cmd, exited := m.cmd, m.exited
	m.cmd, m.exited = nil, nil
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("moto_server did not stop within 10s; killed")
	}
}

func (m *Moto) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)) }

// URL returns the server's base URL, http://127.0.0.1:<port>: the value for
// aws.Config.BaseEndpoint.
func (m *Moto) URL() string { return "http://" + m.addr() }

// Reset drops every resource moto holds, in every account and region
// (POST /moto-api/reset).
func (m *Moto) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := http.Post(m.URL()+"/moto-api/reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}

// Log returns the end of moto_server's log, for failure messages.
func (m *Moto) Log() string { return motoLogTail(m.logPath) }

func motoLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func motoFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
