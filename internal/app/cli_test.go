package app

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/testserver"
)

func runMain(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestConfigCheck(t *testing.T) {
	example := filepath.Join(testserver.RepoRoot(), "deploy", "novacron.example.yaml")
	code, out, errs := runMain("config", "check", example)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "configuration is valid")

	bad := writeFile(t, t.TempDir(), "bad.yaml", `
api:
  listen_address: ""
bus:
  type: kafka
  kafka:
    brokers: []
storage:
  sender:
    concurrency: 0
collectors:
  sim:
    vms: -1
    colour: blue
`)
	code, _, errs = runMain("config", "check", bad)
	require.Equal(t, 1, code)
	require.Contains(t, errs, `collectors.sim.colour (`+bad+`:14): unknown key "colour"`)

	bad2 := writeFile(t, t.TempDir(), "bad2.yaml", `
api:
  listen_address: ""
bus:
  type: kafka
storage:
  sender:
    concurrency: 0
collectors:
  sim:
    vms: -1
`)
	code, _, errs = runMain("config", "check", bad2)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "problems")
	require.Contains(t, errs, `api.listen_address (`+bad2+`:3): must not be empty`)
	require.Contains(t, errs, `storage.sender.concurrency (`+bad2+`:8): concurrency must be > 0`)
	require.Contains(t, errs, `collectors.sim.vms (`+bad2+`:11)`)
	require.Contains(t, errs, `bus.kafka`)

	code, _, errs = runMain("config", "check", filepath.Join(t.TempDir(), "missing.yaml"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "missing.yaml")
}

func TestSplitRolesRefuseEmbeddedDefaults(t *testing.T) {
	code, _, errs := runMain("processor", "--data-dir", t.TempDir())
	require.Equal(t, 1, code)
	require.Contains(t, errs, `bus.type: "memory" works only with every role in one process`)
}

func TestVersionAndUsage(t *testing.T) {
	code, out, _ := runMain("version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "novacron ")
	code, _, errs := runMain("frobnicate")
	require.Equal(t, 2, code)
	require.Contains(t, errs, "frobnicate")
}

func TestBackfillFlags(t *testing.T) {
	code, _, errs := runMain("backfill", "--start", "yesterday-ish")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `--start="yesterday-ish"`)
	code, _, errs = runMain("backfill", "--end", "soon")
	require.Equal(t, 2, code)
	require.Contains(t, errs, `--end="soon"`)
}
