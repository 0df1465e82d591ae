package actuator_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := actuator.NewDefaultConfig()
	require.NoError(t, cfg.Validate())
	require.Equal(t, actuator.ModeDryRun, cfg.DefaultMode)
	require.Equal(t, 10*time.Second, cfg.PolicyReloadInterval)
	cfg.DefaultMode, cfg.Workers, cfg.PolicyReloadInterval = "yolo", 0, -time.Second
	cfg.Policies = append(cfg.Policies, actuator.Policy{Name: "bad name"})
	err := cfg.Validate()
	require.ErrorContains(t, err, "default_mode")
	require.ErrorContains(t, err, "workers")
	require.ErrorContains(t, err, "policy_reload_interval: must not be negative")
	bad := fmt.Sprintf("policies[%d]", len(cfg.Policies)-1)
	require.ErrorContains(t, err, bad+".name")
	require.ErrorContains(t, err, bad+".match.kinds")
}

func TestShutdownWithoutStart(t *testing.T) {
	e := newSim(t, nil)
	a, err := actuator.New(testConfig(actuator.ModeAuto), actuator.Settings{}, actuator.Deps{DB: sqliteDB(t), Drivers: map[string]novacron.Driver{"sim": e.fleet}})
	require.NoError(t, err)
	require.NoError(t, a.Shutdown(context.Background()))
	require.NoError(t, a.Shutdown(context.Background()))
}
