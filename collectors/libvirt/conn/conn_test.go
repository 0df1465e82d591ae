package conn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
)

func TestParseURI(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	f := func(uri, driver, host, socket string) {
		t.Helper()
		tg, err := ParseURI(uri)
		require.NoError(t, err, uri)
		require.Equal(t, driver, tg.Driver, uri)
		require.Equal(t, host, tg.Host, uri)
		require.Equal(t, socket, tg.socket, uri)
	}
	f("qemu:///system", "qemu:///system", "", "/var/run/libvirt/libvirt-sock")
	f("qemu:///session", "qemu:///session", "", "/run/user/1000/libvirt/libvirt-sock")
	f("qemu+unix:///system?socket=/tmp/s", "qemu:///system", "", "/tmp/s")
	f("test+unix:///tmp/node.xml?socket=/tmp/s", "test:///tmp/node.xml", "", "/tmp/s")
	f("/run/libvirt/libvirt-sock", "", "", "/run/libvirt/libvirt-sock")
	f("qemu+tls://kvm-1:16514/system?pkipath=/etc/pki", "qemu:///system", "kvm-1", "")
	f("qemu://kvm-1/system", "qemu:///system", "kvm-1", "")
	f("qemu+ssh://root@kvm-2/system?keyfile=/k", "qemu:///system", "kvm-2", "")
	f("xen:///system", "xen:///system", "", "/var/run/libvirt/libvirt-sock")

	bad := func(uri, want string) {
		t.Helper()
		_, err := ParseURI(uri)
		require.ErrorContains(t, err, want, uri)
	}
	bad("", "empty URI")
	bad("kvm-1", "no scheme")
	bad("qemu+carrier-pigeon://x/system", "unsupported transport")
	bad("qemu+unix://host/system", "no host part")
	bad("qemu+tcp:///system", "needs a host")
	bad("qemu://%zz/", "parse URI")
}

func TestClassify(t *testing.T) {
	f := func(err error, want string) {
		t.Helper()
		got := Classify(err, "op %s", "x")
		require.Equal(t, want, novacron.ErrorCode(got), "%v", err)
		require.ErrorIs(t, got, err)
		require.Contains(t, novacron.ErrorMessage(got), "op x")
	}
	f(libvirt.Error{Code: uint32(libvirt.ErrNoDomain), Message: "Domain not found"}, novacron.ENOTFOUND)
	f(libvirt.Error{Code: uint32(libvirt.ErrOperationInvalid), Message: "domain is not running"}, novacron.ECONFLICT)
	f(libvirt.Error{Code: uint32(libvirt.ErrNoSupport), Message: "not supported"}, novacron.EUNSUPPORTED)
	f(libvirt.Error{Code: uint32(libvirt.ErrXMLError), Message: "bad XML"}, novacron.EINVALID)
	f(libvirt.Error{Code: uint32(libvirt.ErrOperationTimeout), Message: "timeout"}, novacron.EUNAVAILABLE)
	f(libvirt.Error{Code: uint32(libvirt.ErrAccessDenied), Message: "denied"}, novacron.EUNAUTHORIZED)
	f(libvirt.Error{Code: uint32(libvirt.ErrInternalError), Message: "boom"}, novacron.EINTERNAL)
	f(fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), novacron.EUNAVAILABLE)
	f(&net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, novacron.EUNAVAILABLE)
	f(io.EOF, novacron.EUNAVAILABLE)
	f(libvirt.ErrInterrupted, novacron.EUNAVAILABLE)
	f(errors.New("odd"), novacron.EINTERNAL)

	inner := novacron.Errorf(novacron.ECONFLICT, "busy")
	got := Classify(inner, "outer")
	require.Equal(t, novacron.ECONFLICT, novacron.ErrorCode(got))
	require.Equal(t, "outer: busy", novacron.ErrorMessage(got))
	require.Nil(t, Classify(nil, "x"))
	require.Equal(t, libvirt.ErrNoDomain, Code(Classify(libvirt.Error{Code: 42}, "x")))
	require.Equal(t, libvirt.ErrorNumber(-1), Code(errors.New("x")))
}

func FuzzParseTags(f *testing.F) {
	f.Add(`<n:tags xmlns:n="` + TagsNamespace + `"><n:tag name="a" value="b"/></n:tags>`)
	f.Add(`<x><y`)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		tags, _ := ParseTags(s)
		require.LessOrEqual(t, len(tags), maxTags)
		for k := range tags {
			require.NotEmpty(t, k)
		}
	})
}
