package actuator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	actapi "github.com/novacron/novacron/actuator/api"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/statedb"
)

const opToken = "op-secret"

// simEnv is a simulated fleet with a query interface computed from its
// output: each query steps the fleet 15s of simulated time and reads the
// VM's CPU usage ratio.
type simEnv struct {
	fleet *sim.Fleet
	mu    sync.Mutex
	t     time.Time
}

var vmRE = regexp.MustCompile(`vm_id="([^"]+)"`)

func newSim(t *testing.T, incidents []sim.IncidentConfig) *simEnv {
	cfg := sim.NewDefaultConfig()
	cfg.Hosts, cfg.VMs, cfg.Incidents = 3, 12, incidents
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	f, err := sim.NewFleet(*cfg, start)
	require.NoError(t, err)
	e := &simEnv{fleet: f, t: start}
	e.step()
	return e
}

func (e *simEnv) step() []novacron.Series {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.t = e.t.Add(15 * time.Second)
	return e.fleet.Step(e.t)
}

func (e *simEnv) cpu(vmID string) (float64, bool) {
	for _, s := range e.step() {
		if s.Labels.Get("__name__") == "novacron_vm_cpu_usage_ratio" && s.Labels.Get("vm_id") == vmID {
			return s.Samples[0].V, true
		}
	}
	return 0, false
}

func (e *simEnv) query(_ context.Context, expr string, _ time.Time) (float64, error) {
	m := vmRE.FindStringSubmatch(expr)
	if m == nil {
		return 0, novacron.Errorf(novacron.EINVALID, "no vm_id in %s", expr)
	}
	v, ok := e.cpu(m[1])
	if !ok {
		return 0, novacron.Errorf(novacron.ENOTFOUND, "no cpu of %s", m[1])
	}
	return v, nil
}

// recorder records published events.
type recorder struct {
	mu  sync.Mutex
	evs []novacron.Event
}

func (r *recorder) ConsumeEvents(_ context.Context, evs []novacron.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, evs...)
	return nil
}

func (r *recorder) find(kind, state string) []novacron.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []novacron.Event
	for _, e := range r.evs {
		if e.Kind == kind && (state == "" || e.Details["state"] == state) {
			out = append(out, e)
		}
	}
	return out
}

// countingDriver counts the driver's mutating calls.
type countingDriver struct {
	novacron.Driver
	resizes atomic.Int64
	// afterResize, when set, runs after each successful resize.
	afterResize func()
}

func (d *countingDriver) Resize(ctx context.Context, id string, s novacron.Size) error {
	err := d.Driver.Resize(ctx, id, s)
	if err == nil {
		d.resizes.Add(1)
		if d.afterResize != nil {
			d.afterResize()
		}
	}
	return err
}

func testConfig(mode string) actuator.Config {
	cfg := actuator.NewDefaultConfig()
	cfg.DefaultMode = mode
	cfg.OperatorToken = opToken
	cfg.PollInterval = 20 * time.Millisecond
	cfg.RetryMin = 10 * time.Millisecond
	cfg.VerifyWindow = 100 * time.Millisecond
	cfg.Lease.TTL, cfg.Lease.RenewInterval = 2*time.Second, 50*time.Millisecond
	cfg.Budgets.TenantShare = 0
	return cfg
}

func startActuator(t *testing.T, cfg actuator.Config, db *statedb.DB, drv novacron.Driver, q actuator.Querier, sink novacron.EventConsumer) *actuator.Actuator {
	t.Helper()
	a, err := actuator.New(cfg, actuator.Settings{}, actuator.Deps{DB: db, Drivers: map[string]novacron.Driver{"sim": drv}, Query: q, Sink: sink})
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

func breach(vmID string, n int) novacron.Event {
	return novacron.Event{
		SchemaVersion: 1, ID: "breach-" + vmID + "-" + string(rune('a'+n%26)), Kind: novacron.EventForecastBreach,
		Time: time.Now(), Source: "analytics", VMID: vmID, Severity: "critical",
		Labels:  map[string]string{"__name__": "novacron_vm_cpu_usage_ratio", "vm_id": vmID, "provider": "sim"},
		Summary: "cpu expected to reach 0.95 in 1h", Evidence: `novacron_vm_cpu_usage_ratio{vm_id="` + vmID + `"}`,
		Details: map[string]any{"metric": "novacron_vm_cpu_usage_ratio", "eta_seconds": 3600.0, "state": "predicted"},
	}
}

func waitState(t *testing.T, a *actuator.Actuator, id string, states ...string) actuator.Action {
	t.Helper()
	var act actuator.Action
	require.Eventually(t, func() bool {
		var err error
		act, err = a.Get(context.Background(), id)
		require.NoError(t, err)
		for _, s := range states {
			if act.State == s {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "action %s stuck", id)
	return act
}

func apiRouter(a *actuator.Actuator) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	actapi.Mount(a)(r.Group("/api/v1"))
	return r
}

func do(t *testing.T, r http.Handler, method, path, token string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var b bytes.Buffer
	if body != nil {
		require.NoError(t, json.NewEncoder(&b).Encode(body))
	}
	req := httptest.NewRequest(method, path, &b)
	if token != "" {
		req.Header.Set(actapi.OperatorHeader, token)
	}
	req.Header.Set(actapi.OperatorNameHeader, "alice")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

// busiest returns the VM (other than skip) using the most CPU cores.
func busiest(t *testing.T, e *simEnv, skip string) (string, float64) {
	best, bestC := "", 0.0
	for _, vm := range e.fleet.Inventory(e.t).VMs {
		if vm.ID == skip || vm.State != novacron.PowerRunning {
			continue
		}
		r, ok := e.cpu(vm.ID)
		require.True(t, ok)
		if c := r * float64(vm.Size.VCPUs); c > bestC {
			best, bestC = vm.ID, c
		}
	}
	return best, bestC
}

func TestClosedLoopResizeVerified(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) *statedb.DB) {
		e := newSim(t, nil)
		ctx := context.Background()
		vmID, cores := busiest(t, e, "")
		// Shrink the VM below its work so its CPU saturates.
		require.NoError(t, e.fleet.Resize(ctx, vmID, novacron.Size{VCPUs: max(1, int(cores)), MemoryBytes: 4 << 30}))
		before, _ := e.cpu(vmID)
		require.Greater(t, before, 0.9, "the shrunk VM saturates")

		rec := &recorder{}
		drv := &countingDriver{Driver: e.fleet}
		a := startActuator(t, testConfig(actuator.ModeApprove), newDB(t), drv, actuator.QueryFunc(e.query), rec)
		require.NoError(t, a.ConsumeInventory(ctx, e.fleet.Inventory(e.t)))
		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{breach(vmID, 0)}))

		recs, err := a.List(ctx, actuator.ActionFilter{States: []string{actuator.StateProposed}})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		act := recs[0]
		require.Equal(t, vmID, act.VMID)
		require.Equal(t, max(1, int(cores))+2, act.Desired.VCPUs)
		require.NotEmpty(t, act.Evidence)
		require.Zero(t, drv.resizes.Load(), "approve mode waits for a person")

		r := apiRouter(a)
		require.Equal(t, http.StatusForbidden, do(t, r, "POST", "/api/v1/remediation/actions/"+act.ID+"/approve", "", nil).Code)
		require.Equal(t, http.StatusForbidden, do(t, r, "POST", "/api/v1/remediation/actions/"+act.ID+"/approve", "wrong", nil).Code)
		w := do(t, r, "POST", "/api/v1/remediation/actions/"+act.ID+"/approve", opToken, map[string]string{"comment": "go ahead"})
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())

		done := waitState(t, a, act.ID, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
		require.Equal(t, actuator.StateSucceeded, done.State, done.Result)
		require.Equal(t, "operator:alice", done.ApprovedBy)
		require.Equal(t, int64(1), drv.resizes.Load())
		vm, err := e.fleet.VM(ctx, vmID)
		require.NoError(t, err)
		require.Equal(t, act.Desired.VCPUs, vm.Size.VCPUs)
		require.NotNil(t, done.Observed)
		require.Less(t, *done.Observed, 0.85, "the metric recovered")
		require.NotEmpty(t, rec.find(novacron.EventActionStateChange, "running"), "alerting inhibition while in flight")

		w = do(t, r, "GET", "/api/v1/remediation/audit?action_id="+act.ID, "", nil)
		require.Equal(t, http.StatusOK, w.Code)
		var audit struct{ Items []actuator.AuditEntry }
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &audit))
		var evs []string
		for i := len(audit.Items) - 1; i >= 0; i-- {
			evs = append(evs, audit.Items[i].Event)
		}
		require.Subset(t, evs, []string{"plan", "approve", "start", "step", "verify", "succeed"})
	})
}

func TestClosedLoopRunawayRolledBack(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) *statedb.DB) {
		ctx := context.Background()
		// A runaway process pins every vCPU however many there are: adding
		// vCPUs does not help, so the resize must be rolled back.
		e := newSim(t, []sim.IncidentConfig{{Kind: sim.IncidentCPURunaway, Target: "vm-0003", Duration: 48 * time.Hour}})
		e.step()
		v, _ := e.cpu("vm-0003")
		require.Greater(t, v, 0.95)
		orig, err := e.fleet.VM(ctx, "vm-0003")
		require.NoError(t, err)

		rec := &recorder{}
		a := startActuator(t, testConfig(actuator.ModeAuto), newDB(t), e.fleet, actuator.QueryFunc(e.query), rec)
		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{breach("vm-0003", 0)}))
		acts, err := a.List(ctx, actuator.ActionFilter{VMID: "vm-0003"})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		done := waitState(t, a, acts[0].ID, actuator.StateSucceeded, actuator.StateFailed, actuator.StateRolledBack)
		require.Equal(t, actuator.StateRolledBack, done.State, done.Result)
		vm, err := e.fleet.VM(ctx, "vm-0003")
		require.NoError(t, err)
		require.Equal(t, orig.Size.VCPUs, vm.Size.VCPUs, "resized back")
		require.Eventually(t, func() bool { return len(rec.find(novacron.EventIncident, actuator.StateRolledBack)) == 1 }, 5*time.Second, 5*time.Millisecond)
		alerts := rec.find(novacron.EventIncident, actuator.StateRolledBack)
		require.Equal(t, "vm-0003", alerts[0].VMID)
		require.Equal(t, "warning", alerts[0].Severity)
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) *statedb.DB) {
		ctx := context.Background()
		e := newSim(t, nil)
		drv := &countingDriver{Driver: e.fleet}
		a := startActuator(t, testConfig(actuator.ModeDryRun), newDB(t), drv, actuator.QueryFunc(e.query), nil)
		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{breach("vm-0001", 0)}))
		time.Sleep(200 * time.Millisecond)
		acts, err := a.List(ctx, actuator.ActionFilter{})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		require.Equal(t, actuator.StateProposed, acts[0].State)
		require.Equal(t, actuator.ModeDryRun, acts[0].Mode)
		require.Zero(t, drv.resizes.Load())
		_, err = a.Approve(ctx, acts[0].ID, actuator.Decision{Actor: "bob"})
		require.Equal(t, novacron.ECONFLICT, novacron.ErrorCode(err), "a dry-run plan is executed, not approved")
	})
}

func TestStormHoldsBudgetsAndCooldowns(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) *statedb.DB) {
		ctx := context.Background()
		e := newSim(t, nil)
		drv := &countingDriver{Driver: e.fleet}
		cfg := testConfig(actuator.ModeAuto)
		cfg.Budgets.ActionsPerHour, cfg.Budgets.Concurrent = 5, 2
		cfg.VerifyWindow = 50 * time.Millisecond
		a := startActuator(t, cfg, newDB(t), drv, nil, nil)
		inv := e.fleet.Inventory(e.t)
		var evs []novacron.Event
		for i := range 1000 {
			evs = append(evs, breach(inv.VMs[i%len(inv.VMs)].ID, i))
		}
		var maxInflight atomic.Int64
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				acts, _ := a.List(ctx, actuator.ActionFilter{States: []string{actuator.StateRunning, actuator.StateVerifying}})
				if n := int64(len(acts)); n > maxInflight.Load() {
					maxInflight.Store(n)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
		require.NoError(t, a.ConsumeEvents(ctx, evs))
		require.Eventually(t, func() bool {
			acts, _ := a.List(ctx, actuator.ActionFilter{States: []string{actuator.StateSucceeded}})
			return len(acts) == 5
		}, 10*time.Second, 10*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		close(stop)
		require.Equal(t, int64(5), drv.resizes.Load(), "actions_per_hour")
		require.LessOrEqual(t, maxInflight.Load(), int64(2), "concurrent")
		acts, err := a.List(ctx, actuator.ActionFilter{Limit: 1000})
		require.NoError(t, err)
		started := map[string]int{}
		for _, act := range acts {
			if !act.StartedAt.IsZero() {
				started[act.VMID]++
			} else {
				require.Equal(t, actuator.StateApproved, act.State)
				require.Regexp(t, "actions_per_hour|cooldown", act.Blocked)
			}
		}
		require.Len(t, started, 5, "five VMs acted on")
		for vm, n := range started {
			require.Equal(t, 1, n, "vm %s acted on once", vm)
		}
	})
}

func TestCrashResumesWithoutActingTwice(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(testing.TB) *statedb.DB) {
		ctx := context.Background()
		e := newSim(t, nil)
		db := newDB(t)
		orig, err := e.fleet.VM(ctx, "vm-0002")
		require.NoError(t, err)
		crashed := make(chan struct{})
		drv := &countingDriver{Driver: e.fleet}
		var once sync.Once
		drv.afterResize = func() { once.Do(func() { close(crashed); select {} }) } // hang: the process "dies" mid-step
		cfg := testConfig(actuator.ModeAuto)
		cfg.Lease.TTL = 300 * time.Millisecond
		a1, err := actuator.New(cfg, actuator.Settings{}, actuator.Deps{DB: db, Drivers: map[string]novacron.Driver{"sim": drv}})
		require.NoError(t, err)
		require.NoError(t, a1.Start(ctx))
		require.NoError(t, a1.ConsumeEvents(ctx, []novacron.Event{breach("vm-0002", 0)}))
		<-crashed
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_ = a1.Shutdown(sctx) // the stuck worker never returns, as after a crash
		cancel()

		drv2 := &countingDriver{Driver: e.fleet}
		a2 := startActuator(t, cfg, db, drv2, nil, nil)
		acts, err := a2.List(ctx, actuator.ActionFilter{})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		done := waitState(t, a2, acts[0].ID, actuator.StateSucceeded, actuator.StateFailed)
		require.Equal(t, actuator.StateSucceeded, done.State)
		require.Zero(t, drv2.resizes.Load(), "the resumed actuator saw the VM resized and did not resize again")
		vm, err := e.fleet.VM(ctx, "vm-0002")
		require.NoError(t, err)
		require.Equal(t, orig.Size.VCPUs+2, vm.Size.VCPUs)
	})
}
