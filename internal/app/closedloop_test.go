package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	actapi "github.com/novacron/novacron/actuator/api"
	"github.com/novacron/novacron/api/eventsapi"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
	"github.com/novacron/novacron/pipeline/events"
)

// The incident run: a quiet simulated day for the models to learn, then
// a CPU runaway on an idle VM and, once it is over, a noisy neighbour.
const (
	incidentWarm  = 24 * time.Hour
	runawayAt     = incidentWarm + 20*time.Minute
	runawayTarget = "vm-0002" // an idle VM on host-02
	noisyAt       = incidentWarm + 2*time.Hour + 40*time.Minute
	noisyTarget   = "host-03" // a database and three idle VMs
	incidentSpan  = incidentWarm + 4*time.Hour
	// incidentReal is the real time the span takes at the configured
	// speed; under the race detector the pipeline is slower and the
	// simulation waits for it.
	incidentReal = 45 * time.Second
	// detectBound is how soon after its start an incident must open.
	detectBound   = 90 * time.Minute
	eventuallyMax = 3 * time.Minute
)

// incidentStart returns the simulated fleet's start_time: the span ends
// at now. It is in the past because the analytics stage drops samples
// stamped more than analytics.max_clock_skew after the clock.
func incidentStart(now time.Time) time.Time {
	return now.Add(-incidentSpan).Truncate(time.Minute).UTC()
}

// incidentRunConfig is the configuration file of `novacron run` on a
// small simulated fleet with the two scheduled incidents, the actuator's
// shipped policies in approve mode.
//
// Two settings differ from the defaults because the simulation runs about
// two thousand times faster than real time, so the analytics stage lags
// the samples by simulated hours:
//
//   - topics.partitions 1: with several partitions a lagging stage takes
//     minutes of simulated time from one partition at a time, publishing
//     anomalies out of time order across partitions, and the correlator,
//     which groups anomalies opened within five minutes of each other in
//     event time, does not group them;
//   - storage.embedded.out_of_order_window 30h: the derived series come
//     hours behind the raw samples already stored, and the process's own
//     metrics, stamped with the real time, come after samples stamped a
//     simulated day earlier.
func incidentRunConfig(t *testing.T) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`
data_dir: %q
api:
  listen_address: 127.0.0.1:0
log:
  level: warn
self_scrape_interval: 5s
topics:
  partitions: 1
storage:
  embedded:
    out_of_order_window: 30h
collectors:
  sim:
    hosts: 3
    vms: 12
    interval: 1m
    inventory_interval: 1h
    speed: %g
    start_time: %s
    incidents:
      - kind: cpu_runaway
        target: %s
        at: %s
        duration: 2h
      - kind: noisy_neighbor
        target: %s
        at: %s
        duration: 2h
actuator:
  default_mode: approve
  poll_interval: 500ms
  verify_window: 2s
`, t.TempDir(), incidentSpan.Seconds()/incidentReal.Seconds(), incidentStart(time.Now()).Format(time.RFC3339),
		runawayTarget, runawayAt, noisyTarget, noisyAt)
	cfg, err := config.Parse([]byte(yaml), "incidents.yaml", nil)
	require.NoError(t, err)
	cfg.Ingest.DrainTimeout = 10 * time.Second
	require.Equal(t, actuator.DefaultPolicies(), cfg.Actuator.Policies, "the shipped policies are in force")
	return cfg
}

// streamRecorder keeps every event /api/v1/events/stream sends.
type streamRecorder struct {
	mu     sync.Mutex
	events []novacron.Event
	bad    []string
	done   chan struct{}
}

// recordStream opens the live event stream and records it until the test
// ends.
func recordStream(t *testing.T, base, token string) *streamRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1"+eventsapi.PathStream, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: HTTP %d", eventsapi.PathStream, resp.StatusCode)
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	r := &streamRecorder{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var id, kind string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var e novacron.Event
				err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e)
				r.mu.Lock()
				if err != nil || e.ID != id || e.Kind != kind {
					r.bad = append(r.bad, fmt.Sprintf("id %q event %q data %q: %v", id, kind, line, err))
				} else {
					r.events = append(r.events, e)
				}
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// find returns the recorded events for which match holds.
func (r *streamRecorder) find(match func(novacron.Event) bool) []novacron.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []novacron.Event
	for _, e := range r.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// apiPost does an authenticated POST of body as JSON, with the operator
// token and name when set, and decodes the answer into out.
func apiPost(t *testing.T, base, token, operatorToken, operator, path string, body, out any) int {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if operatorToken != "" {
		req.Header.Set(actapi.OperatorHeader, operatorToken)
	}
	if operator != "" {
		req.Header.Set(actapi.OperatorNameHeader, operator)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(rb) > 0 {
		require.NoError(t, json.Unmarshal(rb, out), string(rb))
	}
	return resp.StatusCode
}

// findIncident polls /api/v1/incidents with the filter until an incident
// with the cause opened within detectBound after start, and returns it.
func findIncident(t *testing.T, base, token string, filter url.Values, cause string, start time.Time) events.Item {
	t.Helper()
	filter.Set("limit", "1000")
	var hit events.Item
	require.Eventually(t, func() bool {
		var page eventsapi.Page
		if apiGet(t, base, token, "/api/v1"+eventsapi.PathIncidents+"?"+filter.Encode(), &page) != http.StatusOK {
			return false
		}
		for _, it := range page.Items {
			if it.Details["cause"] == cause && !it.Start.Before(start) && it.Start.Sub(start) <= detectBound {
				hit = it
				return true
			}
		}
		return false
	}, eventuallyMax, 250*time.Millisecond, "no %s incident for %s from %s in /api/v1/incidents", cause, filter.Encode(), start)
	return hit
}

type actionList struct {
	Items []actuator.Action `json:"items"`
}

type auditList struct {
	Items []actuator.AuditEntry `json:"items"`
}

// TestRunSimulatedIncidents is `novacron run` on embedded defaults (the
// in-process bus, the embedded TSDB, SQLite) with a simulated fleet that
// learns for a day, then meets a CPU runaway and a noisy neighbour:
//
//   - incidents: the host contention is listed by /api/v1/incidents on
//     the right host with its probable cause and its steal anomalies by
//     /api/v1/anomalies; the runaway's incident is listed with its cause,
//     and its first CPU anomaly checked against the derived series
//     (baseline, band), which answer PromQL through /api/v1/query; the
//     shipped vm-runaway policy proposes a reboot of the VM;
//   - closed loop: the correlator's own host-contention incident makes the
//     actuator propose migrating the noisiest VM off the host (the shipped
//     policies, in approve mode set in the configuration file); an operator approves
//     it through the API with the operator token; the simulated fleet's
//     driver migrates the VM, the fleet inventory in the API shows it on
//     the new host, and the action succeeds after its verification
//     window, the audit trail naming who approved it and why;
//   - stream: /api/v1/events/stream, opened before either incident
//     happened, delivered their incident events live.
func TestRunSimulatedIncidents(t *testing.T) {
	began := time.Now()
	cfg := incidentRunConfig(t)
	a := openApp(t, cfg)
	base, tok := a.APIURL(), a.Token()
	rec := recordStream(t, base, tok)
	opTok, err := os.ReadFile(filepath.Join(cfg.DataDir, OperatorTokenFileName))
	require.NoError(t, err, "the operator token is generated into the data directory")

	fleet := a.SimFleet().Fleet()
	var noisy, runaway sim.Incident
	for _, in := range fleet.Incidents() {
		switch in.Kind {
		case sim.IncidentNoisyNeighbor:
			noisy = in
		case sim.IncidentCPURunaway:
			runaway = in
		}
	}
	require.Equal(t, noisyTarget, noisy.Target)
	require.Equal(t, runawayTarget, runaway.Target)
	t.Logf("simulating %s from %s at speed %g: %s on %s at %s, %s on %s at %s", incidentSpan, fleet.StartTime().Format(time.RFC3339),
		cfg.Collectors.Sim.Speed, runaway.Kind, runaway.Target, runaway.Start.Format(time.RFC3339), noisy.Kind, noisy.Target, noisy.Start.Format(time.RFC3339))
	progress := func(what string) {
		t.Logf("%5.1fs: %s (simulated time %s)", time.Since(began).Seconds(), what, fleet.Now().Format(time.RFC3339))
	}
	defer func() {
		// What fired, for whoever reads the log: the incidents and
		// forecast breaches, which shipped policy matches which event,
		// and every action planned.
		for _, e := range rec.find(func(e novacron.Event) bool {
			return e.Kind == novacron.EventIncident || e.Kind == novacron.EventForecastBreach || e.Kind == novacron.EventRecommendation
		}) {
			var matched []string
			for _, p := range actuator.DefaultPolicies() {
				if p.Matches(e) {
					matched = append(matched, p.Name)
				}
			}
			t.Logf("event %s %s %s: %s; shipped policies matching: %v", e.Time.Format(time.RFC3339), e.Kind, e.ID, e.Summary, matched)
		}
		var acts actionList
		apiGet(t, base, tok, "/api/v1"+actapi.PathActions+"?limit=1000", &acts)
		for _, act := range acts.Items {
			t.Logf("action %s by policy %s, %s: %s", act.ID, act.Policy, act.State, act.Explanation)
		}
		progress("done")
	}()

	t.Run("closed loop", func(t *testing.T) {
		inc := findIncident(t, base, tok, url.Values{"host": {noisy.Target}}, correlate.CauseHostContention, noisy.Start)
		// The stream may deliver the event a moment after the index has
		// it.
		var opened []novacron.Event
		require.Eventually(t, func() bool {
			opened = rec.find(func(e novacron.Event) bool { return e.ID == inc.ID+"-opened" })
			return len(opened) > 0
		}, 30*time.Second, 50*time.Millisecond, "the incident's opened event on the stream")
		require.Len(t, opened, 1, "delivered once")
		i := slices.IndexFunc(cfg.Actuator.Policies, func(p actuator.Policy) bool { return p.Name == "host-contention" })
		require.GreaterOrEqual(t, i, 0)
		require.True(t, cfg.Actuator.Policies[i].Matches(opened[0]), "the shipped host-contention policy matches the correlator's incident")

		// The incident makes the policy propose migrating one of the
		// host's VMs; in approve mode the action waits for an operator.
		var act actuator.Action
		require.Eventually(t, func() bool {
			var l actionList
			if apiGet(t, base, tok, "/api/v1"+actapi.PathRecommendations+"?policy=host-contention", &l) != http.StatusOK {
				return false
			}
			for _, x := range l.Items {
				if slices.ContainsFunc(x.Evidence, func(ev actuator.Evidence) bool { return strings.HasPrefix(ev.EventID, inc.ID) }) {
					act = x
					return true
				}
			}
			return false
		}, eventuallyMax, 250*time.Millisecond, "the host-contention incident proposes no action")
		progress("proposed " + act.Explanation)
		require.Equal(t, actuator.StateProposed, act.State)
		require.Equal(t, actuator.ModeApprove, act.Mode)
		require.Equal(t, novacron.ActionMigrate, act.Kind)
		require.Equal(t, noisy.Target, act.Original.Host)
		require.NotEmpty(t, act.Desired.Host)
		require.NotEqual(t, noisy.Target, act.Desired.Host)
		var before novacron.VM
		require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1/fleet/vms/"+act.VMID, &before))
		require.Equal(t, noisy.Target, before.Host)

		// Approving needs the operator token besides the API token.
		path := "/api/v1/remediation/actions/" + act.ID + "/approve"
		decision := map[string]string{"comment": "steal on " + noisy.Target + ", move it"}
		require.Equal(t, http.StatusForbidden, apiPost(t, base, tok, "", "alice", path, decision, nil))
		var approved actuator.Action
		require.Equal(t, http.StatusOK, apiPost(t, base, tok, strings.TrimSpace(string(opTok)), "alice", path, decision, &approved))
		require.Equal(t, actuator.StateApproved, approved.State)

		// The simulated fleet's driver migrates the VM; the inventory the
		// API serves follows, and the action succeeds once its
		// verification window has passed.
		var done actuator.Action
		require.Eventually(t, func() bool {
			return apiGet(t, base, tok, "/api/v1/remediation/actions/"+act.ID, &done) == http.StatusOK && actuator.Terminal(done.State)
		}, time.Minute, 100*time.Millisecond, "the approved action does not finish")
		progress("action " + done.State + ": " + done.Result)
		require.Equal(t, actuator.StateSucceeded, done.State, "result: %s, last error: %s", done.Result, done.LastError)
		require.Equal(t, "operator:alice", done.ApprovedBy)
		require.Equal(t, decision["comment"], done.Comment)
		require.False(t, done.VerifyFrom.IsZero(), "the action went through verification")
		// Times are kept to the millisecond.
		require.GreaterOrEqual(t, done.FinishedAt.Sub(done.VerifyFrom), cfg.Actuator.VerifyWindow-time.Millisecond)
		vm, err := fleet.VM(t.Context(), act.VMID)
		require.NoError(t, err)
		require.Equal(t, act.Desired.Host, vm.Host, "the simulated fleet moved the VM")
		require.Eventually(t, func() bool {
			var got novacron.VM
			return apiGet(t, base, tok, "/api/v1/fleet/vms/"+act.VMID, &got) == http.StatusOK && got.Host == act.Desired.Host && got.Generation > before.Generation
		}, time.Minute, 100*time.Millisecond, "the fleet inventory does not show %s on %s", act.VMID, act.Desired.Host)
		require.Eventually(t, func() bool {
			return len(rec.find(func(e novacron.Event) bool {
				return e.Kind == novacron.EventVMLifecycle && e.VMID == act.VMID && e.Details["action"] == string(novacron.ActionMigrate) &&
					e.Details["from_host"] == noisy.Target && e.Details["to_host"] == act.Desired.Host
			})) == 1
		}, 30*time.Second, 100*time.Millisecond, "the stream shows no migration event for %s", act.VMID)

		// The audit trail: planned by the policy, approved by alice with
		// her comment, then started, verified and succeeded.
		var trail auditList
		require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1/remediation/audit?action_id="+act.ID, &trail))
		var steps []string
		for _, e := range slices.Backward(trail.Items) {
			steps = append(steps, e.Event)
			switch e.Event {
			case "plan":
				require.Equal(t, "policy:host-contention", e.Actor)
			case "approve":
				require.Equal(t, "operator:alice", e.Actor)
				require.Equal(t, decision["comment"], e.Message)
				require.Equal(t, actuator.StateProposed, e.FromState)
				require.Equal(t, actuator.StateApproved, e.ToState)
			}
		}
		t.Logf("audit trail: %v", steps)
		require.GreaterOrEqual(t, len(steps), 4)
		require.Equal(t, []string{"plan", "approve"}, steps[:2])
		require.Contains(t, steps, "verify")
		require.Equal(t, "succeed", steps[len(steps)-1])
	})

	// Past the span the simulation runs ahead of the clock at the same
	// speed, and the embedded store rejects samples more than
	// out_of_order_window older than the newest it holds: stop it before
	// the derived series, which come late, are checked.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	require.NoError(t, a.SimFleet().Shutdown(sctx))
	cancel()
	progress("simulated fleet stopped")

	t.Run("incidents", func(t *testing.T) {
		host := findIncident(t, base, tok, url.Values{"host": {noisy.Target}}, correlate.CauseHostContention, noisy.Start)
		progress(fmt.Sprintf("incident %s opened %s after the noisy neighbour arrived: %s", host.ID, host.Start.Sub(noisy.Start), host.Summary))
		require.Empty(t, host.VMID, "host contention is a host-level incident")
		require.GreaterOrEqual(t, len(host.Details["vms"].([]any)), 2, "contention is steal rising on several VMs")
		require.NotEmpty(t, host.Evidence)
		require.NotEmpty(t, host.Explanation)

		// The anomalies behind it: steal on several of the host's VMs.
		var page eventsapi.Page
		require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1"+eventsapi.PathAnomalies+"?"+url.Values{
			"host": {noisy.Target}, "metric": {"novacron_vm_cpu_steal_seconds_total"}, "limit": {"1000"},
		}.Encode(), &page))
		stealVMs := map[string]bool{}
		for _, it := range page.Items {
			if !it.Start.Before(noisy.Start) && it.Start.Sub(noisy.Start) <= detectBound {
				stealVMs[it.VMID] = true
			}
		}
		require.GreaterOrEqual(t, len(stealVMs), 2, "steal anomalies on %s", noisy.Target)

		// The runaway began before the noisy neighbour, and with one
		// partition the events arrive in time order, so its incident is
		// listed by now, with the runaway cause.
		var runawayIncident *events.Item
		require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1"+eventsapi.PathIncidents+"?vm_id="+runaway.Target, &page))
		for _, it := range page.Items {
			if !it.Start.Before(runaway.Start) && it.Start.Sub(runaway.Start) <= detectBound {
				t.Logf("incident %s on %s opened %s after the runaway began, cause %v: %s", it.ID, it.VMID, it.Start.Sub(runaway.Start), it.Details["cause"], it.Summary)
				if it.Details["cause"] == correlate.CauseVMRunaway {
					runawayIncident = &it
				}
			}
		}
		require.NotNil(t, runawayIncident, "no %s incident on %s within %s of the runaway", correlate.CauseVMRunaway, runaway.Target, detectBound)
		// The shipped vm-runaway policy proposes rebooting the VM, and
		// waits for a person (approve mode).
		require.Eventually(t, func() bool {
			var acts actionList
			apiGet(t, base, tok, "/api/v1"+actapi.PathActions+"?limit=1000&vm_id="+runaway.Target, &acts)
			return slices.ContainsFunc(acts.Items, func(a actuator.Action) bool {
				return a.Policy == "vm-runaway" && a.Kind == novacron.ActionReboot && a.VMID == runaway.Target
			})
		}, time.Minute, 250*time.Millisecond, "no reboot of %s proposed by vm-runaway", runaway.Target)

		// The derived series are stored beside the raw ones, stamped
		// with simulated time. The stage writes them through the storage
		// queue, so they may follow the events by a moment.
		derived := func(q string, at time.Time, cond func(float64) bool, msg string) float64 {
			t.Helper()
			var v float64
			require.Eventually(t, func() bool {
				got, ok := instant(t, base, tok, q, at)
				v = got
				return ok && cond(got)
			}, time.Minute, 250*time.Millisecond, "%s: %s at %s (last %v)", msg, q, at.Format(time.RFC3339), v)
			return v
		}
		present := func(float64) bool { return true }
		sel := fmt.Sprintf(`{vm_id=%q}`, runaway.Target)
		for _, kind := range []string{"baseline", "baseline_lower", "baseline_upper", "anomaly_score"} {
			derived("novacron_vm_cpu_usage_ratio:"+kind+sel, runaway.Start.Add(10*time.Minute), present, "no derived series")
		}
		steal := derived(fmt.Sprintf(`count(count by (vm_id) (novacron_vm_cpu_steal_seconds:rate:anomaly_score{host=%q}))`, noisy.Target),
			noisy.Start, func(v float64) bool { return v >= 2 }, "no steal scores on "+noisy.Target)
		t.Logf("VMs of %s with a stored steal score: %v", noisy.Target, steal)
		steal, _ = instant(t, base, tok, fmt.Sprintf(`max(max_over_time(novacron_vm_cpu_steal_seconds:rate:anomaly_score{host=%q}[1h]))`, noisy.Target), noisy.Start.Add(time.Hour))
		t.Logf("highest steal score on %s in the noisy neighbour's first hour: %.3f", noisy.Target, steal)
		// Not asserted, logged: in this replay the stored memory
		// forecasts and steal scores come out incomplete (under
		// investigation in pipeline/analytics).
		if v, ok := instant(t, base, tok, `count(count by (vm_id) (last_over_time(novacron_vm_memory_usage_ratio:forecast{horizon="1h"}[30m])))`, noisy.Start); ok {
			t.Logf("VMs with a stored 1h memory forecast at %s: %v of %d", noisy.Start.Format(time.RFC3339), v, cfg.Collectors.Sim.VMs)
		} else {
			t.Logf("no stored 1h memory forecast at %s", noisy.Start.Format(time.RFC3339))
		}
		{
			// At the first anomalous sample the CPU lies far above the
			// band the detector expected: at least min_deviation band
			// widths above the baseline.
			require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1"+eventsapi.PathAnomalies+"?"+url.Values{
				"vm_id": {runaway.Target}, "metric": {"novacron_vm_cpu_usage_ratio"}, "sort": {"+start"},
			}.Encode(), &page))
			i := slices.IndexFunc(page.Items, func(it events.Item) bool { return !it.Start.Before(runaway.Start) })
			require.GreaterOrEqual(t, i, 0, "a runaway incident without a CPU anomaly on %s", runaway.Target)
			cpu := page.Items[i]
			upper := derived("novacron_vm_cpu_usage_ratio:baseline_upper"+sel, cpu.Start, present, "no band")
			base := derived("novacron_vm_cpu_usage_ratio:baseline"+sel, cpu.Start, present, "no baseline")
			far := base + cfg.Analytics.Anomaly.MinDeviation*(upper-base)
			derived("novacron_vm_cpu_usage_ratio"+sel, cpu.Start, func(v float64) bool { return v > far }, "the runaway lies far above the band")
		}
	})

	t.Run("stream", func(t *testing.T) {
		// The stream was opened before the simulated fleet reached the
		// incidents: every incident opened since came over it live.
		var page eventsapi.Page
		require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1"+eventsapi.PathIncidents+"?limit=1000", &page))
		hostSeen := false
		for _, it := range page.Items {
			if it.Start.Before(fleet.StartTime().Add(incidentWarm)) {
				continue
			}
			hostSeen = hostSeen || (it.Host == noisy.Target && it.Details["cause"] == correlate.CauseHostContention)
			var got []novacron.Event
			require.Eventually(t, func() bool {
				got = rec.find(func(e novacron.Event) bool { return e.ID == it.ID+"-opened" })
				return len(got) > 0
			}, 30*time.Second, 50*time.Millisecond, "the stream did not deliver %s-opened", it.ID)
			require.Len(t, got, 1, "%s-opened delivered once", it.ID)
			require.Equal(t, novacron.EventIncident, got[0].Kind)
			require.Equal(t, correlate.Source, got[0].Source)
			require.Equal(t, it.Details["cause"], got[0].Details["cause"])
			require.Equal(t, correlate.StateOpen, got[0].Details["state"])
		}
		require.True(t, hostSeen, "no host contention incident on %s", noisy.Target)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Empty(t, rec.bad, "malformed stream events")
	})
}
