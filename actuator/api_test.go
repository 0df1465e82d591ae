package actuator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	actapi "github.com/novacron/novacron/actuator/api"
	"github.com/novacron/novacron/api"
)

const actions = "/api/v1/remediation/actions/"

// decode decodes a response body into v, failing on a non-200 status.
func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), v))
}

func apiState(t *testing.T, r http.Handler, id string) actuator.Action {
	t.Helper()
	var act actuator.Action
	decode(t, do(t, r, "GET", actions+id, "", nil), &act)
	return act
}

// proposed feeds one CPU breach per VM and returns the actions planned,
// by VM.
func proposed(t *testing.T, a *actuator.Actuator, vms ...string) map[string]actuator.Action {
	t.Helper()
	ctx := context.Background()
	var evs []novacron.Event
	for i, vm := range vms {
		evs = append(evs, breach(vm, i))
	}
	require.NoError(t, a.ConsumeEvents(ctx, evs))
	out := map[string]actuator.Action{}
	for _, vm := range vms {
		acts, err := a.List(ctx, actuator.ActionFilter{VMID: vm})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		out[vm] = acts[0]
	}
	return out
}

func TestAPIRejectExecuteCancel(t *testing.T) {
	e := newSim(t, nil)
	drv := &countingDriver{Driver: e.fleet}
	a := startActuator(t, testConfig(actuator.ModeDryRun), sqliteDB(t), drv, nil, nil)
	r := apiRouter(a)
	acts := proposed(t, a, "vm-0001", "vm-0002", "vm-0003")

	// Reject: terminal, and a second decision conflicts.
	id := acts["vm-0001"].ID
	require.Equal(t, http.StatusForbidden, do(t, r, "POST", actions+id+"/reject", "", nil).Code)
	require.Equal(t, actuator.StateProposed, apiState(t, r, id).State, "refused without the operator token")
	var got actuator.Action
	decode(t, do(t, r, "POST", actions+id+"/reject", opToken, map[string]string{"comment": "not now"}), &got)
	require.Equal(t, actuator.StateRejected, got.State)
	got = apiState(t, r, id)
	require.Equal(t, actuator.StateRejected, got.State)
	require.Equal(t, "not now", got.Comment)
	require.False(t, got.FinishedAt.IsZero())
	require.Equal(t, http.StatusConflict, do(t, r, "POST", actions+id+"/reject", opToken, nil).Code)
	require.Equal(t, http.StatusConflict, do(t, r, "POST", actions+id+"/execute", opToken, nil).Code)

	// Cancel a proposed action.
	id = acts["vm-0002"].ID
	decode(t, do(t, r, "POST", actions+id+"/cancel", opToken, nil), &got)
	require.Equal(t, actuator.StateCancelled, apiState(t, r, id).State)

	// A dry-run plan cannot be approved, but an operator can execute it.
	id = acts["vm-0003"].ID
	require.Equal(t, http.StatusConflict, do(t, r, "POST", actions+id+"/approve", opToken, nil).Code)
	require.Equal(t, http.StatusBadRequest, do(t, r, "POST", actions+id+"/execute", opToken, "not an object").Code)
	decode(t, do(t, r, "POST", actions+id+"/execute", opToken, nil), &got)
	require.Equal(t, actuator.StateApproved, got.State)
	require.Equal(t, "operator:alice", got.ApprovedBy)
	require.Equal(t, actuator.ModeApprove, got.Mode)
	done := waitState(t, a, id, actuator.StateSucceeded, actuator.StateFailed)
	require.Equal(t, actuator.StateSucceeded, done.State, done.Result)
	require.Equal(t, int64(1), drv.resizes.Load(), "only the executed action ran")
	require.Equal(t, http.StatusNotFound, do(t, r, "POST", actions+"act-missing/cancel", opToken, nil).Code)

	var page struct{ Items []actuator.Action }
	decode(t, do(t, r, "GET", "/api/v1/remediation/actions?state=rejected,cancelled", "", nil), &page)
	require.Len(t, page.Items, 2)
	decode(t, do(t, r, "GET", "/api/v1/remediation/recommendations", "", nil), &page)
	require.Empty(t, page.Items, "nothing left proposed")
	require.Equal(t, http.StatusBadRequest, do(t, r, "GET", "/api/v1/remediation/actions?limit=0", "", nil).Code)
}

func TestAPIRollback(t *testing.T) {
	ctx := context.Background()
	e := newSim(t, nil)
	orig, err := e.fleet.VM(ctx, "vm-0004")
	require.NoError(t, err)
	a := startActuator(t, testConfig(actuator.ModeAuto), sqliteDB(t), e.fleet, nil, nil)
	r := apiRouter(a)
	id := proposed(t, a, "vm-0004")["vm-0004"].ID
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, id, actuator.StateSucceeded, actuator.StateFailed).State)
	vm, err := e.fleet.VM(ctx, "vm-0004")
	require.NoError(t, err)
	require.Equal(t, orig.Size.VCPUs+2, vm.Size.VCPUs)

	require.Equal(t, http.StatusForbidden, do(t, r, "POST", actions+id+"/rollback", "", nil).Code)
	var got actuator.Action
	decode(t, do(t, r, "POST", actions+id+"/rollback", opToken, map[string]string{"comment": "undo"}), &got)
	require.Equal(t, actuator.StateRollingBack, got.State)
	require.Equal(t, actuator.StateRolledBack, waitState(t, a, id, actuator.StateRolledBack, actuator.StateFailed).State)
	vm, err = e.fleet.VM(ctx, "vm-0004")
	require.NoError(t, err)
	require.Equal(t, orig.Size.VCPUs, vm.Size.VCPUs, "resized back")
	require.Equal(t, http.StatusConflict, do(t, r, "POST", actions+id+"/rollback", opToken, nil).Code, "already rolled back")
}

func TestAPIKillSwitch(t *testing.T) {
	e := newSim(t, nil)
	drv := &countingDriver{Driver: e.fleet}
	a := startActuator(t, testConfig(actuator.ModeAuto), sqliteDB(t), drv, nil, nil)
	r := apiRouter(a)
	const ks = "/api/v1/remediation/kill-switch"
	var state struct{ Enabled bool }
	decode(t, do(t, r, "GET", ks, "", nil), &state)
	require.False(t, state.Enabled)
	require.Equal(t, http.StatusForbidden, do(t, r, "PUT", ks, "", map[string]bool{"enabled": true}).Code)
	require.Equal(t, http.StatusBadRequest, do(t, r, "PUT", ks, opToken, map[string]string{"on": "yes"}).Code)
	decode(t, do(t, r, "GET", ks, "", nil), &state)
	require.False(t, state.Enabled, "refused requests changed nothing")
	decode(t, do(t, r, "PUT", ks, opToken, map[string]bool{"enabled": true}), &state)
	require.True(t, state.Enabled)
	decode(t, do(t, r, "GET", ks, "", nil), &state)
	require.True(t, state.Enabled)

	id := proposed(t, a, "vm-0005")["vm-0005"].ID
	require.Eventually(t, func() bool { return apiState(t, r, id).Blocked != "" }, 5*time.Second, 5*time.Millisecond)
	act := apiState(t, r, id)
	require.Equal(t, actuator.StateApproved, act.State)
	require.Contains(t, act.Blocked, "kill switch")
	require.Zero(t, drv.resizes.Load())

	decode(t, do(t, r, "PUT", ks, opToken, map[string]bool{"enabled": false}), &state)
	require.False(t, state.Enabled)
	require.Equal(t, actuator.StateSucceeded, waitState(t, a, id, actuator.StateSucceeded, actuator.StateFailed).State, "released by turning the switch off")
	require.Equal(t, int64(1), drv.resizes.Load())
}

func TestAPIPutPolicyAndWhatIf(t *testing.T) {
	ctx := context.Background()
	e := newSim(t, nil)
	a := startActuator(t, testConfig(actuator.ModeApprove), sqliteDB(t), e.fleet, nil, nil)
	r := apiRouter(a)
	const pols = "/api/v1/remediation/policies/"
	p := actuator.Policy{Name: "shrink", Match: actuator.Match{Kinds: []string{actuator.EventAlert}, Labels: map[string]string{"alertname": "Oversized"}},
		Action: actuator.ActionSpec{Kind: novacron.ActionResize, VCPUs: 1}}
	require.Equal(t, http.StatusForbidden, do(t, r, "PUT", pols+"shrink", "", p).Code)
	require.Equal(t, http.StatusBadRequest, do(t, r, "PUT", pols+"other", opToken, p).Code, "name differs from the path")
	bad := p
	bad.Match.Kinds = nil
	require.Equal(t, http.StatusBadRequest, do(t, r, "PUT", pols+"shrink", opToken, bad).Code)
	var list struct{ Items []actuator.Policy }
	decode(t, do(t, r, "GET", "/api/v1/remediation/policies", "", nil), &list)
	require.Len(t, list.Items, len(actuator.DefaultPolicies()), "refused policies are not added")

	var stored actuator.Policy
	decode(t, do(t, r, "PUT", pols+"shrink", opToken, p), &stored)
	require.Equal(t, "shrink", stored.Name)
	decode(t, do(t, r, "GET", "/api/v1/remediation/policies", "", nil), &list)
	n := len(actuator.DefaultPolicies())
	require.Len(t, list.Items, n+1)
	require.Equal(t, "shrink", list.Items[n].Name)
	require.Equal(t, actuator.ModeApprove, list.Items[n].Mode, "the default mode applies")

	// The new policy plans; the stored events feed what-if.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{alert("Oversized", "sim", "vm-0006"), alert("Oversized", "sim", "vm-0007")}))
	acts, err := a.List(ctx, actuator.ActionFilter{Policy: "shrink"})
	require.NoError(t, err)
	require.Len(t, acts, 2)
	require.Equal(t, 1, acts[0].Desired.VCPUs)

	var res actuator.WhatIfResult
	decode(t, do(t, r, "POST", pols+"shrink/whatif?days=1", "", nil), &res)
	require.Equal(t, "shrink", res.Policy)
	require.Equal(t, 2, res.Events)
	require.Len(t, res.Actions, 2)
	for _, act := range res.Actions {
		require.Equal(t, actuator.ModeDryRun, act.Mode)
	}
	// A draft that only matches one VM's alert.
	draft := p
	draft.Match.Labels = map[string]string{"alertname": "Oversized", "vm_id": "vm-0007"}
	decode(t, do(t, r, "POST", pols+"draft/whatif", "", draft), &res)
	require.Len(t, res.Actions, 1)
	require.Equal(t, "vm-0007", res.Actions[0].VMID)
	require.Equal(t, http.StatusNotFound, do(t, r, "POST", pols+"missing/whatif", "", nil).Code)
	require.Equal(t, http.StatusBadRequest, do(t, r, "POST", pols+"shrink/whatif?days=0", "", nil).Code)
	after, err := a.List(ctx, actuator.ActionFilter{})
	require.NoError(t, err)
	require.Len(t, after, 2, "what-if records nothing")
}

func TestAPIAlertmanagerWebhook(t *testing.T) {
	ctx := context.Background()
	e := newSim(t, nil)
	cfg := testConfig(actuator.ModeApprove)
	cfg.Policies = append(cfg.Policies, alertPolicy("shrink", "Oversized", actuator.ActionSpec{Kind: novacron.ActionResize, VCPUs: 1}))
	a := startActuator(t, cfg, sqliteDB(t), e.fleet, nil, nil)
	r := apiRouter(a)
	const hook = "/api/v1/remediation/alertmanager"
	payload := `{"version":"4","status":"firing","receiver":"novacron","groupKey":"{}:{alertname=\"Oversized\"}","alerts":[
	 {"status":"firing","labels":{"alertname":"Oversized","vm_id":"vm-0008","provider":"sim","severity":"warning"},"annotations":{"summary":"too big"},"startsAt":"2026-03-02T00:00:00Z","fingerprint":"f1"},
	 {"status":"resolved","labels":{"alertname":"Oversized","vm_id":"vm-0009","provider":"sim"},"startsAt":"2026-03-02T00:00:00Z","fingerprint":"f2"},
	 {"status":"firing","labels":{"alertname":"DiskSlow","vm_id":"vm-0010","provider":"sim"},"startsAt":"2026-03-02T00:00:00Z","fingerprint":"f3"}]}`
	post := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", hook, strings.NewReader(body))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	var n struct{ Alerts int }
	decode(t, post(payload), &n)
	require.Equal(t, 2, n.Alerts, "firing alerts only")
	acts, err := a.List(ctx, actuator.ActionFilter{})
	require.NoError(t, err)
	require.Len(t, acts, 1, "only the alert a policy matches plans an action")
	require.Equal(t, "vm-0008", acts[0].VMID)
	require.Equal(t, "shrink", acts[0].Policy)
	require.Equal(t, actuator.StateProposed, acts[0].State)
	require.Equal(t, "alertmanager/f1/1772409600", acts[0].Evidence[0].EventID)
	require.Equal(t, "too big", acts[0].Evidence[0].Summary)
	decode(t, post(payload), &n)
	acts, err = a.List(ctx, actuator.ActionFilter{})
	require.NoError(t, err)
	require.Len(t, acts, 1, "a redelivered notification plans nothing new")
	require.Equal(t, http.StatusBadRequest, post(`{"version":"3","alerts":[]}`).Code)
	require.Equal(t, http.StatusBadRequest, post(`{"version":`).Code)
}

// TestAPIAuthentication mounts the routes on the API server: every route
// needs the bearer token (401), and the operator routes also the
// operator token (403), whose absence in the configuration refuses them.
func TestAPIAuthentication(t *testing.T) {
	e := newSim(t, nil)
	a := startActuator(t, testConfig(actuator.ModeApprove), sqliteDB(t), e.fleet, nil, nil)
	id := proposed(t, a, "vm-0011")["vm-0011"].ID
	gin.SetMode(gin.TestMode)
	s, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "bearer-secret"}, api.Settings{}, api.Deps{Mount: []func(*gin.RouterGroup){actapi.Mount(a)}})
	require.NoError(t, err)
	h := s.Handler()
	call := func(method, path, bearer, op string) int {
		req := httptest.NewRequest(method, path, bytes.NewReader(nil))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if op != "" {
			req.Header.Set(actapi.OperatorHeader, op)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	require.Equal(t, http.StatusUnauthorized, call("GET", actions+id, "", ""))
	require.Equal(t, http.StatusUnauthorized, call("GET", actions+id, "wrong", ""))
	require.Equal(t, http.StatusUnauthorized, call("POST", actions+id+"/approve", "", opToken), "the operator token does not replace the bearer token")
	require.Equal(t, http.StatusUnauthorized, call("POST", "/api/v1/remediation/alertmanager", "", ""))
	require.Equal(t, http.StatusOK, call("GET", actions+id, "bearer-secret", ""))
	require.Equal(t, http.StatusForbidden, call("POST", actions+id+"/approve", "bearer-secret", ""))
	require.Equal(t, http.StatusForbidden, call("POST", actions+id+"/approve", "bearer-secret", "wrong"))
	require.Equal(t, http.StatusOK, call("POST", actions+id+"/approve", "bearer-secret", opToken))

	// Without an operator token configured, operator routes are refused.
	cfg := testConfig(actuator.ModeApprove)
	cfg.OperatorToken = ""
	b := startActuator(t, cfg, sqliteDB(t), e.fleet, nil, nil)
	id = proposed(t, b, "vm-0001")["vm-0001"].ID
	r := apiRouter(b)
	require.Equal(t, http.StatusForbidden, do(t, r, "POST", actions+id+"/approve", opToken, nil).Code)
	require.Equal(t, http.StatusForbidden, do(t, r, "PUT", "/api/v1/remediation/kill-switch", "", map[string]bool{"enabled": true}).Code)
	require.Equal(t, actuator.StateProposed, apiState(t, r, id).State)
}
