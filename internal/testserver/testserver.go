// Package testserver starts the real servers NovaCron's tests talk to
// (Apache Kafka, VictoriaMetrics, ...) on 127.0.0.1, once per test binary,
// and decides what happens when one cannot be had.
//
// Under `make test`, and whenever NOVACRON_TEST_REQUIRE_SERVERS=1, a test
// whose server cannot be started fails; otherwise it is skipped with the
// reason, so `go test ./...` on a bare laptop still runs the unit tests.
package testserver

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireEnv is the environment variable that turns a missing server from
// a skip into a failure.
const RequireEnv = "NOVACRON_TEST_REQUIRE_SERVERS"

// Required reports whether tests must fail when a server is missing.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// Unavailable fails or skips tb, naming the server and why it is missing.
func Unavailable(tb testing.TB, server string, err error) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s unavailable and %s=1: %v", server, RequireEnv, err)
	}
	tb.Skipf("%s unavailable (set %s=1 to fail instead): %v", server, RequireEnv, err)
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir returns the directory where downloaded test servers are kept
// (NOVACRON_TEST_CACHE, default .cache under the repository root).
func CacheDir() string {
	if d := os.Getenv("NOVACRON_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), ".cache")
}
