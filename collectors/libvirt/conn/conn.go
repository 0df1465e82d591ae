// Package conn connects to libvirt daemons for the libvirt collector and
// the libvirt actuator driver: it turns a host's URI into a dialer for
// github.com/digitalocean/go-libvirt (pure Go, no cgo), bounds every call
// by a context, and maps libvirt's failures onto novacron.Error codes.
//
// go-libvirt calls take no context: a call on a daemon that stopped
// answering would block until the socket breaks. Client.Do runs the call
// aside and, when the context ends first, breaks the connection, which
// makes the call return; the owner then dials again.
//
// It also reads and writes NovaCron's tags in a domain's <metadata>
// (TagsNamespace), which both adapters share.
package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	novacron "github.com/novacron/novacron"
)

// Target is a parsed host URI: how to reach the daemon and which driver
// to open on it.
type Target struct {
	// URI is the URI as configured.
	URI string
	// Driver is the URI the daemon opens ("qemu:///system"); empty lets
	// the daemon choose its default driver.
	Driver string
	// Host is the remote host name, empty for a local socket.
	Host string

	u      *url.URL
	socket string // unix socket path for local targets
}

// ParseURI parses a libvirt connection URI as libvirt's own clients do,
// with the transports go-libvirt supports: "qemu:///system" (local unix
// socket), "qemu+unix:///system?socket=/path", "qemu+tls://host/system",
// "qemu+tcp://host/system", "qemu+ssh://user@host/system",
// "qemu+libssh2://...", "test:///default", "xen:///system". An absolute
// path stands for the unix socket of a daemon whose default driver is
// wanted. A local "…:///session" URI without a socket parameter reaches the
// session daemon of the user running NovaCron
// ($XDG_RUNTIME_DIR/libvirt/libvirt-sock, else ~/.cache/libvirt/libvirt-sock).
func ParseURI(raw string) (Target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Target{}, errors.New("empty URI")
	}
	if strings.HasPrefix(raw, "/") {
		return Target{URI: raw, socket: filepath.Clean(raw), u: &url.URL{Scheme: "unix", Path: raw}}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("parse URI %q: %w", raw, err)
	}
	if u.Scheme == "" {
		return Target{}, fmt.Errorf("URI %q has no scheme (want driver[+transport]://[host]/path, such as qemu:///system)", raw)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if transport == "" && u.Host != "" {
		transport = "tls"
	}
	switch transport {
	case "", "unix", "tls", "tcp", "ssh", "libssh", "libssh2":
	default:
		return Target{}, fmt.Errorf("URI %q: unsupported transport %q (want unix, tls, tcp, ssh or libssh2)", raw, transport)
	}
	if (transport == "" || transport == "unix") && u.Host != "" {
		return Target{}, fmt.Errorf("URI %q: a unix socket URI has no host part", raw)
	}
	if (transport != "" && transport != "unix") && u.Hostname() == "" {
		return Target{}, fmt.Errorf("URI %q: transport %s needs a host", raw, transport)
	}
	t := Target{URI: raw, Driver: string(libvirt.RemoteURI(u)), Host: u.Hostname(), u: u}
	if transport == "" || transport == "unix" {
		t.socket = u.Query().Get("socket")
		if t.socket == "" {
			t.socket = defaultSocket(driver, u.Path)
		}
	}
	return t, nil
}

// defaultSocket is where libvirt's own client looks for a local daemon.
func defaultSocket(driver, path string) string {
	if path == "/session" || (driver == "test" && os.Getuid() != 0) {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			return filepath.Join(d, "libvirt", "libvirt-sock")
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".cache", "libvirt", "libvirt-sock")
		}
	}
	return "/var/run/libvirt/libvirt-sock"
}

// Client is an open connection to one daemon. Its embedded
// *libvirt.Libvirt is safe for concurrent calls; Close breaks every call
// in flight.
type Client struct {
	*libvirt.Libvirt
	target Target

	mu  sync.Mutex
	raw net.Conn
}

// Target returns where the client is connected.
func (c *Client) Target() Target { return c.target }

// recordingDialer keeps the connection it dials, so Close can break it
// without a round trip to a daemon that may not answer.
type recordingDialer struct {
	inner socket.Dialer
	c     *Client
}

func (d recordingDialer) Dial() (net.Conn, error) {
	nc, err := d.inner.Dial()
	if err == nil {
		d.c.mu.Lock()
		d.c.raw = nc
		d.c.mu.Unlock()
	}
	return nc, err
}

// dialer returns the go-libvirt dialer for the target, with go-libvirt's
// options for remote transports.
func (t Target) dialer(timeout time.Duration) (socket.Dialer, error) {
	if t.socket != "" {
		return dialers.NewLocal(dialers.WithSocket(t.socket), dialers.WithLocalTimeout(timeout)), nil
	}
	q := t.u.Query()
	_, transport, _ := strings.Cut(t.u.Scheme, "+")
	if transport == "" {
		transport = "tls"
	}
	switch transport {
	case "tcp":
		opts := []dialers.RemoteOption{dialers.WithRemoteTimeout(timeout)}
		if p := t.u.Port(); p != "" {
			opts = append(opts, dialers.UsePort(p))
		}
		return dialers.NewRemote(t.u.Hostname(), opts...), nil
	case "tls":
		var opts []dialers.TLSOption
		if p := t.u.Port(); p != "" {
			opts = append(opts, dialers.UseTLSPort(p))
		}
		if pki := q.Get("pkipath"); pki != "" {
			opts = append(opts, dialers.UsePKIPath(pki))
		}
		if q.Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(t.u.Hostname(), opts...), nil
	default: // ssh, libssh, libssh2
		var opts []dialers.SSHOption
		if p := t.u.Port(); p != "" {
			opts = append(opts, dialers.UseSSHPort(p))
		}
		if user := t.u.User.Username(); user != "" {
			opts = append(opts, dialers.UseSSHUsername(user))
		}
		if s := q.Get("socket"); s != "" {
			opts = append(opts, dialers.WithRemoteSocket(s))
		}
		if kf := q.Get("keyfile"); kf != "" {
			opts = append(opts, dialers.UseKeyFile(kf))
		}
		if kh := q.Get("known_hosts"); kh != "" {
			opts = append(opts, dialers.UseKnownHostsFile(kh))
		}
		switch v := q.Get("known_hosts_verify"); {
		case q.Get("no_verify") == "1" || v == "ignore":
			opts = append(opts, dialers.WithInsecureIgnoreHostKey())
		case v == "auto":
			opts = append(opts, dialers.WithAcceptUnknownHostKey())
		case v != "" && v != "normal":
			return nil, fmt.Errorf("known_hosts_verify=%q: want normal, auto or ignore", v)
		}
		return dialers.NewSSH(t.u.Hostname(), opts...), nil
	}
}

// Dial connects to the target's daemon and opens its driver, within ctx.
func Dial(ctx context.Context, t Target) (*Client, error) {
	if t.u == nil {
		return nil, novacron.Errorf(novacron.EINVALID, "connect: target not made by ParseURI")
	}
	timeout := 15 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	d, err := t.dialer(timeout)
	if err != nil {
		return nil, novacron.Errorf(novacron.EINVALID, "connect %s: %v", t.URI, err)
	}
	c := &Client{target: t}
	c.Libvirt = libvirt.NewWithDialer(recordingDialer{inner: d, c: c})
	done := make(chan error, 1)
	go func() { done <- c.ConnectToURI(libvirt.ConnectURI(t.Driver)) }()
	select {
	case err := <-done:
		if err != nil {
			c.Close()
			return nil, Classify(err, "connect %s", t.URI)
		}
		return c, nil
	case <-ctx.Done():
		c.Close()
		<-done
		return nil, &novacron.Error{Code: novacron.EUNAVAILABLE, Message: fmt.Sprintf("connect %s: %v", t.URI, ctx.Err()), Err: ctx.Err()}
	}
}

// Close breaks the connection at once, without telling the daemon: calls
// in flight return an error and Disconnected is closed. Use Disconnect for
// a polite close of a daemon that answers.
func (c *Client) Close() {
	c.mu.Lock()
	raw := c.raw
	c.mu.Unlock()
	if raw != nil {
		_ = raw.Close()
	}
}

// CloseWithin closes the connection politely when the daemon answers
// within ctx, and breaks it otherwise.
func (c *Client) CloseWithin(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		_ = c.Disconnect()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.Close()
	}
}

// Do runs call, which uses c, and returns its error. When ctx ends first
// it breaks the connection (so call returns and c reports Disconnected)
// and returns an EUNAVAILABLE error: a daemon that does not answer in time
// is treated as gone, and the owner of c dials again.
func (c *Client) Do(ctx context.Context, call func() error) error {
	if err := ctx.Err(); err != nil {
		return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "request cancelled", Err: err}
	}
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.Close()
		<-done
		return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: "libvirt call did not finish in time; connection closed", Err: ctx.Err()}
	}
}

// Code returns the libvirt error number in err's chain, or -1.
func Code(err error) libvirt.ErrorNumber {
	var le libvirt.Error
	if errors.As(err, &le) {
		return libvirt.ErrorNumber(le.Code)
	}
	return -1
}

// Classify wraps err in a *novacron.Error whose code says what the caller
// can do about it; the message is the formatted context followed by
// libvirt's own message. An err that already is a *novacron.Error keeps
// its code.
func Classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	var ne *novacron.Error
	if errors.As(err, &ne) {
		return &novacron.Error{Code: ne.Code, Message: msg + ": " + ne.Message, Err: ne.Err}
	}
	code := novacron.EINTERNAL
	var le libvirt.Error
	switch {
	case errors.As(err, &le):
		code = codeOf(libvirt.ErrorNumber(le.Code))
		msg += ": " + le.Message
	case isTransient(err):
		code = novacron.EUNAVAILABLE
		msg += ": " + err.Error()
	default:
		msg += ": " + err.Error()
	}
	return &novacron.Error{Code: code, Message: msg, Err: cause{err}}
}

// cause keeps the original error in the chain (for errors.Is and
// errors.As) without repeating its text, which the message already holds.
type cause struct{ err error }

func (c cause) Error() string {
	var le libvirt.Error
	if errors.As(c.err, &le) {
		return fmt.Sprintf("libvirt error %d", le.Code)
	}
	return "cause"
}

func (c cause) Unwrap() error { return c.err }

func codeOf(n libvirt.ErrorNumber) string {
	switch n {
	case libvirt.ErrNoDomain, libvirt.ErrNoNetwork, libvirt.ErrNoStoragePool, libvirt.ErrNoStorageVol,
		libvirt.ErrNoDomainSnapshot, libvirt.ErrNoInterface, libvirt.ErrNoSecret, libvirt.ErrNoNodeDevice,
		libvirt.ErrDeviceMissing, libvirt.ErrNoDomainMetadata, libvirt.ErrNoNetworkPort, libvirt.ErrNoHostname:
		return novacron.ENOTFOUND
	case libvirt.ErrOperationInvalid, libvirt.ErrDomExist, libvirt.ErrNetworkExist, libvirt.ErrStorageVolExist,
		libvirt.ErrResourceBusy, libvirt.ErrBlockCopyActive, libvirt.ErrMigrateUnsafe, libvirt.ErrCPUIncompatible,
		libvirt.ErrMultipleDomains, libvirt.ErrStoragePoolBuilt:
		return novacron.ECONFLICT
	case libvirt.ErrNoSupport, libvirt.ErrOperationUnsupported, libvirt.ErrArgumentUnsupported, libvirt.ErrConfigUnsupported:
		return novacron.EUNSUPPORTED
	case libvirt.ErrInvalidArg, libvirt.ErrXMLError, libvirt.ErrXMLDetail, libvirt.ErrXMLInvalidSchema,
		libvirt.ErrInvalidMac, libvirt.ErrOverflow, libvirt.ErrNoName, libvirt.ErrOsType, libvirt.ErrNoSource, libvirt.ErrNoTarget:
		return novacron.EINVALID
	case libvirt.ErrOperationTimeout, libvirt.ErrAgentUnresponsive, libvirt.ErrAgentUnsynced, libvirt.ErrAgentCommandTimeout,
		libvirt.ErrNoConnect, libvirt.ErrInvalidConn, libvirt.ErrRPC, libvirt.ErrSystemError, libvirt.ErrUnknownHost,
		libvirt.ErrOperationAborted, libvirt.ErrNoServer, libvirt.ErrNoClient:
		return novacron.EUNAVAILABLE
	case libvirt.ErrAuthFailed, libvirt.ErrAuthCancelled, libvirt.ErrAuthUnavailable, libvirt.ErrAccessDenied, libvirt.ErrOperationDenied:
		return novacron.EUNAUTHORIZED
	}
	return novacron.EINTERNAL
}

// isTransient reports network and socket failures: the daemon may answer
// again later.
func isTransient(err error) bool {
	var ne net.Error
	var dnsErr *net.DNSError
	return errors.Is(err, libvirt.ErrInterrupted) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.EINVAL) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &dnsErr) || errors.As(err, &ne)
}
