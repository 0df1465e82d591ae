package api_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	actapi "github.com/novacron/novacron/actuator/api"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/collectors/sim"
)

// TestOpenAPIDocumentsRemediationRoutes serves the remediation routes
// through the API server, as the binary does, and checks that
// api/openapi.yaml documents each of them, method by method, and that
// every route needing the operator token documents its header.
func TestOpenAPIDocumentsRemediationRoutes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	require.NoError(t, err)
	type operation struct {
		Parameters []struct {
			Ref  string `yaml:"$ref"`
			Name string `yaml:"name"`
			In   string `yaml:"in"`
		} `yaml:"parameters"`
	}
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(b, &spec))

	a := newActuator(t)
	s, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "x"}, api.Settings{}, api.Deps{
		Mount: []func(*gin.RouterGroup){actapi.Mount(a)},
	})
	require.NoError(t, err)
	engine, ok := s.Handler().(*gin.Engine)
	require.True(t, ok, "the API server's handler is its gin engine")
	param := regexp.MustCompile(`:([a-z_]+)`)
	n := 0
	for _, r := range engine.Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/remediation/") {
			continue
		}
		n++
		path := param.ReplaceAllString(r.Path, "{$1}")
		node, ok := spec.Paths[path][strings.ToLower(r.Method)]
		require.True(t, ok, "%s %s is served but not documented in api/openapi.yaml", r.Method, path)
		var op operation
		require.NoError(t, node.Decode(&op))
		hasOp := false
		for _, p := range op.Parameters {
			if p.Ref == "#/components/parameters/operatorToken" || (p.In == "header" && p.Name == actapi.OperatorHeader) {
				hasOp = true
			}
		}
		needsOp := r.Method != "GET" && !strings.HasSuffix(r.Path, "/whatif") && !strings.HasSuffix(r.Path, "/alertmanager")
		require.Equal(t, needsOp, hasOp, "%s %s: operator token header documented iff the route requires it", r.Method, path)
	}
	require.Equal(t, 16, n, "remediation routes served")
	for p, ops := range spec.Paths {
		if !strings.HasPrefix(p, "/api/v1/remediation/") {
			continue
		}
		for m := range ops {
			if m == "parameters" {
				continue
			}
			found := false
			for _, r := range engine.Routes() {
				if r.Method == strings.ToUpper(m) && param.ReplaceAllString(r.Path, "{$1}") == p {
					found = true
				}
			}
			require.True(t, found, "%s %s is documented but not served", strings.ToUpper(m), p)
		}
	}
}

func newActuator(t *testing.T) *actuator.Actuator {
	t.Helper()
	cfg := sim.NewDefaultConfig()
	cfg.Hosts, cfg.VMs = 1, 2
	f, err := sim.NewFleet(*cfg, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	acfg := actuator.NewDefaultConfig()
	acfg.OperatorToken = "op"
	a, err := actuator.New(acfg, actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"sim": f}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}
