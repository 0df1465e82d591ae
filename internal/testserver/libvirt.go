package testserver

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LibvirtdBinaryEnv names the environment variable that points at a
// libvirtd binary; by default it is looked up in PATH and /usr/sbin
// (Debian's package libvirt-daemon installs /usr/sbin/libvirtd).
const LibvirtdBinaryEnv = "NOVACRON_LIBVIRTD"

// nobody is the user an unprivileged daemon runs as when the tests run as
// root: libvirtd as root wants the system setup (users, groups, polkit)
// that a test machine does not have, while a session daemon needs nothing.
const nobody = 65534

// Libvirtd is an unprivileged libvirt session daemon with its own home,
// configuration, runtime and cache folders in a temporary directory. Its
// clients connect over its unix socket; through it they reach the test
// driver (test:///...) and QEMU under software emulation (qemu:///session).
//
// When the tests run as root the daemon runs as nobody, so its files must
// be readable by that user: use WriteFile to hand it node XML or images.
type Libvirtd struct {
	// Dir is the daemon's root directory; everything it owns is below.
	Dir string
	// Socket is the path of the daemon's unix socket.
	Socket string
	// HostUUID is the host UUID the daemon reports (host_uuid in its
	// libvirtd.conf); two daemons that migrate to each other need
	// different ones.
	HostUUID string

	runtimeDir string
	logPath    string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	sharedLibvirtdOnce sync.Once
	sharedLibvirtd     *Libvirtd
	sharedLibvirtdErr  error

	allLibvirtdMu sync.Mutex
	allLibvirtd   []*Libvirtd
)

// Libvirt returns the session daemon shared by every test of the binary,
// starting it on first use. Tests sharing it keep apart by using their own
// test driver node files (TestURI) or their own domain names. It runs until
// StopLibvirt, which TestMain should call. When libvirtd is missing or does
// not start, tb is failed or skipped through Unavailable.
func Libvirt(tb testing.TB) *Libvirtd {
	tb.Helper()
	sharedLibvirtdOnce.Do(func() {
		sharedLibvirtd, sharedLibvirtdErr = StartLibvirtd()
	})
	if sharedLibvirtdErr != nil {
		Unavailable(tb, "libvirtd", sharedLibvirtdErr)
	}
	return sharedLibvirtd
}

// NewLibvirtd starts a session daemon of tb's own with a fresh host UUID,
// stopped when tb ends; a migration test needs two.
func NewLibvirtd(tb testing.TB) *Libvirtd {
	tb.Helper()
	d, err := StartLibvirtd()
	if err != nil {
		Unavailable(tb, "libvirtd", err)
	}
	tb.Cleanup(d.Stop)
	return d
}

// StopLibvirt stops every daemon started by this package, with the guests
// they run, and removes their folders. Call it from TestMain after m.Run.
func StopLibvirt() {
	allLibvirtdMu.Lock()
	ds := allLibvirtd
	allLibvirtd = nil
	allLibvirtdMu.Unlock()
	for _, d := range ds {
		d.Stop()
	}
}

func libvirtdBinary() (string, error) {
	if p := os.Getenv(LibvirtdBinaryEnv); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/libvirtd"); err == nil {
		return "/usr/sbin/libvirtd", nil
	}
	return "", fmt.Errorf("libvirtd not found (scripts/test-deps-libvirt.sh installs it, or set %s)", LibvirtdBinaryEnv)
}

// newUUID returns a random RFC 4122 version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// StartLibvirtd starts a session daemon in a new temporary directory and
// waits until its socket answers. The caller must Stop it.
func StartLibvirtd() (*Libvirtd, error) {
	bin, err := libvirtdBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "novacron-libvirtd-")
	if err != nil {
		return nil, err
	}
	d := &Libvirtd{
		Dir:        dir,
		HostUUID:   newUUID(),
		runtimeDir: filepath.Join(dir, "run"),
		logPath:    filepath.Join(dir, "libvirtd.log"),
	}
	d.Socket = filepath.Join(d.runtimeDir, "libvirt", "libvirt-sock")
	if err := d.layout(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if err := d.start(bin); err != nil {
		d.Stop()
		return nil, err
	}
	allLibvirtdMu.Lock()
	allLibvirtd = append(allLibvirtd, d)
	allLibvirtdMu.Unlock()
	return d, nil
}

// layout creates the daemon's folders and configuration, owned by the user
// it runs as.
func (d *Libvirtd) layout() error {
	if err := os.Chmod(d.Dir, 0o755); err != nil {
		return err
	}
	for _, sub := range []string{"home", "run", "config/libvirt", "cache", "data", "files"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(d.runtimeDir, 0o700); err != nil {
		return err
	}
	conf := fmt.Sprintf("host_uuid = %q\nlog_outputs = \"3:file:%s\"\n", d.HostUUID, d.logPath)
	if err := os.WriteFile(filepath.Join(d.Dir, "config", "libvirt", "libvirtd.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	if os.Getuid() != 0 {
		return nil
	}
	return filepath.Walk(d.Dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	})
}

func (d *Libvirtd) start(bin string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(d.Dir, "libvirtd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Join(d.Dir, "home")
	cmd.Env = []string{
		"HOME=" + filepath.Join(d.Dir, "home"),
		"XDG_RUNTIME_DIR=" + d.runtimeDir,
		"XDG_CONFIG_HOME=" + filepath.Join(d.Dir, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(d.Dir, "cache"),
		"XDG_DATA_HOME=" + filepath.Join(d.Dir, "data"),
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so Stop can kill whatever it forked; and
	// killed if the test binary dies. Go sets the parent-death signal after
	// switching user, so the switch does not clear it.
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Getuid() == 0 {
		attr.Credential = &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	d.cmd, d.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			d.cmd = nil
			return fmt.Errorf("libvirtd exited at startup: %s", d.logTail())
		default:
		}
		if c, err := net.DialTimeout("unix", d.Socket, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd socket %s not ready after 30s: %s", d.Socket, d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *Libvirtd) logTail() string {
	var parts []string
	for _, p := range []string{filepath.Join(d.Dir, "libvirtd.out"), d.logPath} {
		b, _ := os.ReadFile(p)
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "\n")
}

// Stop kills the guests the daemon started and the daemon's process group,
// and removes its folders. It is safe to call more than once.
func (d *Libvirtd) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	// QEMU guests leave the daemon's process group: find them by their
	// pid files.
	_ = filepath.Walk(filepath.Join(d.runtimeDir, "libvirt", "qemu"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || !strings.HasSuffix(p, ".pid") {
			return nil
		}
		b, _ := os.ReadFile(p)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return nil
	})
	if d.cmd != nil {
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
		}
		d.cmd = nil
	}
	_ = os.RemoveAll(d.Dir)
}

// URI returns a client URI for the hypervisor driver name ("qemu:///session",
// "test:///default") reached over the daemon's socket, in the form
// github.com/digitalocean/go-libvirt and virsh understand:
// "qemu+unix:///session?socket=...".
func (d *Libvirtd) URI(driver string) string {
	u, err := url.Parse(driver)
	if err != nil || u.Scheme == "" {
		panic(fmt.Sprintf("testserver: bad libvirt driver URI %q", driver))
	}
	q := u.Query()
	q.Set("socket", d.Socket)
	return (&url.URL{Scheme: u.Scheme + "+unix", Path: u.Path, RawQuery: q.Encode()}).String()
}

// WriteFile writes data to a file the daemon can read (and write) under
// its files folder and returns the absolute path.
func (d *Libvirtd) WriteFile(name string, data []byte) (string, error) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return "", errors.New("testserver: WriteFile wants a plain file name")
	}
	p := filepath.Join(d.Dir, "files", name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return "", err
	}
	if os.Getuid() == 0 {
		if err := os.Chown(p, nobody, nobody); err != nil {
			return "", err
		}
	}
	return p, nil
}

// FilesDir returns the folder WriteFile writes to; the daemon may create
// files there (storage pools, disk images).
func (d *Libvirtd) FilesDir() string { return filepath.Join(d.Dir, "files") }

// TestURI writes a test driver node description (a <node> document with
// domains, networks and pools) for this daemon and returns the client URI
// of a private test driver connection on it ("test+unix:///<file>?socket=..."):
// each node file is a separate in-memory hypervisor, so tests using their
// own stay independent. name must be unique per daemon.
func (d *Libvirtd) TestURI(tb testing.TB, name, nodeXML string) string {
	tb.Helper()
	p, err := d.WriteFile(name+".xml", []byte(nodeXML))
	if err != nil {
		tb.Fatalf("write test driver node %s: %v", name, err)
	}
	return d.URI("test://" + p)
}

// BootSector returns a 512-byte x86 boot sector that spins forever
// (jmp $): the smallest guest that boots, keeps one vCPU busy and never
// touches a disk or network.
func BootSector() []byte {
	b := make([]byte, 512)
	b[0], b[1] = 0xeb, 0xfe // jmp $
	b[510], b[511] = 0x55, 0xaa
	return b
}
