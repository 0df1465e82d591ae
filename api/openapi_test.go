package api

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	actapi "github.com/novacron/novacron/actuator/api"
	alertapi "github.com/novacron/novacron/alerting/api"
	"github.com/novacron/novacron/api/eventsapi"
	"github.com/novacron/novacron/pipeline/events"
)

// TestOpenAPICoversRoutes checks that openapi.yaml documents exactly the
// routes the server registers, method by method.
func TestOpenAPICoversRoutes(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var spec struct {
		OpenAPI string                          `yaml:"openapi"`
		Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(b, &spec))
	require.Equal(t, "3.0.3", spec.OpenAPI)
	documented := map[string]bool{}
	for p, ops := range spec.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	// The binary mounts the event, alerting and remediation routes; they
	// are part of the API.
	s, err := New(Options{ListenAddress: "127.0.0.1:0", Token: "x"}, Settings{}, Deps{
		Mount: []func(*gin.RouterGroup){
			eventsapi.Mount(events.NewIndex(events.NewDefaultConfig())),
			alertapi.Mount(nil, nil),
			actapi.Mount(nil),
		},
	})
	require.NoError(t, err)
	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range s.engine.Routes() {
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	require.Equal(t, served, documented)
}
