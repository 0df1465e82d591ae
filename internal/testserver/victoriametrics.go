package testserver

import (
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

// VictoriaMetricsBinaryEnv names the environment variable that points at
// a victoria-metrics binary; by default it is looked up in PATH (Debian's
// package victoria-metrics installs /usr/bin/victoria-metrics).
const VictoriaMetricsBinaryEnv = "NOVACRON_VICTORIA_METRICS"

// VM is a single-node VictoriaMetrics on 127.0.0.1 with its own data
// directory. Tests get one from VictoriaMetrics (shared) or
// NewVictoriaMetrics (private, can be stopped and restarted).
//
// It runs with -search.latencyOffset=0s so fresh samples are queryable at
// once, -search.disableCache so answers never come from a stale cache, and
// -dedup.minScrapeInterval=1ms so a re-delivered sample is stored once per
// timestamp.
type VM struct {
	bin     string
	root    string // holds dataDir and the log
	dataDir string
	port    int
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	sharedVMOnce sync.Once
	sharedVM     *VM
	sharedVMErr  error

	allVMsMu sync.Mutex
	allVMs   []*VM
)

// VictoriaMetrics returns the VictoriaMetrics shared by every test of the
// binary, starting it on first use. Tests sharing it must keep their data
// apart (distinct metric names or labels). It stays up until
// StopVictoriaMetrics, which TestMain should call. When the binary is
// missing or does not start, tb is failed or skipped through Unavailable.
func VictoriaMetrics(tb testing.TB) *VM {
	tb.Helper()
	sharedVMOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novacron-vm-")
		if err != nil {
			sharedVMErr = err
			return
		}
		sharedVM, sharedVMErr = startVM(dir)
		if sharedVMErr != nil {
			_ = os.RemoveAll(dir)
		}
	})
	if sharedVMErr != nil {
		Unavailable(tb, "VictoriaMetrics", sharedVMErr)
	}
	return sharedVM
}

// NewVictoriaMetrics starts a VictoriaMetrics of tb's own, in a temporary
// data directory, stopped when tb ends. Use it to stop and restart the
// server (Stop, Start) on the same port and data.
func NewVictoriaMetrics(tb testing.TB) *VM {
	tb.Helper()
	dir := tb.TempDir()
	vm, err := startVM(dir)
	if err != nil {
		Unavailable(tb, "VictoriaMetrics", err)
	}
	tb.Cleanup(func() { _ = vm.Stop() })
	return vm
}

// StopVictoriaMetrics stops every VictoriaMetrics started by this package
// and removes the shared one's data. Call it from TestMain after m.Run.
func StopVictoriaMetrics() {
	allVMsMu.Lock()
	vms := allVMs
	allVMs = nil
	allVMsMu.Unlock()
	for _, vm := range vms {
		_ = vm.Stop()
	}
	if sharedVM != nil {
		_ = os.RemoveAll(sharedVM.root)
	}
}

func vmBinary() (string, error) {
	if p := os.Getenv(VictoriaMetricsBinaryEnv); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("victoria-metrics")
	if err != nil {
		return "", fmt.Errorf("victoria-metrics binary not found (apt-get install victoria-metrics, or set %s): %w", VictoriaMetricsBinaryEnv, err)
	}
	return p, nil
}

// startVM picks a free loopback port and starts the server, trying again
// with another port if the first one was taken meanwhile.
func startVM(dataDir string) (*VM, error) {
	bin, err := vmBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		port, err := vmFreePort()
		if err != nil {
			return nil, err
		}
		vm := &VM{bin: bin, root: dataDir, dataDir: filepath.Join(dataDir, "data"), port: port, logPath: filepath.Join(dataDir, "victoria-metrics.log")}
		if lastErr = vm.Start(); lastErr == nil {
			allVMsMu.Lock()
			allVMs = append(allVMs, vm)
			allVMsMu.Unlock()
			return vm, nil
		}
	}
	return nil, lastErr
}

func vmFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts the server (again) on its port and data directory and
// waits until /health answers. It does nothing when the server is running.
func (vm *VM) Start() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(vm.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(vm.bin,
		"-httpListenAddr="+vm.addr(),
		"-storageDataPath="+vm.dataDir,
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-dedup.minScrapeInterval=1ms",
		"-loggerLevel=WARN",
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Kill the server if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", vm.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("victoria-metrics on %s exited at startup: %s", vm.addr(), vm.logTail())
		default:
		}
		resp, err := http.Get(vm.URL() + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("victoria-metrics on %s not healthy after 30s: %s", vm.addr(), vm.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	vm.cmd = cmd
	vm.exited = exited
	return nil
}

// Stop stops the server gracefully (SIGINT: VictoriaMetrics flushes its
// buffers to disk), killing it after 30s. It does nothing when the server
// is not running.
func (vm *VM) Stop() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.cmd == nil {
		return nil
	}
	cmd, exited := vm.cmd, vm.exited
	vm.cmd, vm.exited = nil, nil
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("victoria-metrics did not stop within 30s; killed")
	}
}

func (vm *VM) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.port)) }

// URL returns the server's base URL, http://127.0.0.1:<port>.
func (vm *VM) URL() string { return "http://" + vm.addr() }

// WriteURL returns the Prometheus remote-write endpoint.
func (vm *VM) WriteURL() string { return vm.URL() + "/api/v1/write" }

// DataDir returns the server's storage directory.
func (vm *VM) DataDir() string { return vm.dataDir }

// ForceFlush makes recently written samples visible to queries and
// exports at once (GET /internal/force_flush).
func (vm *VM) ForceFlush() error {
	resp, err := http.Get(vm.URL() + "/internal/force_flush")
	if err != nil {
		return fmt.Errorf("force flush: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force flush: HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

func (vm *VM) logTail() string {
	b, err := os.ReadFile(vm.logPath)
	if err != nil {
		return "(no log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
