package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
)

// OperatorHeader carries the operator token.
const OperatorHeader = "X-NovaCron-Operator-Token"

// OperatorNameHeader optionally names the operator in the audit log.
const OperatorNameHeader = "X-NovaCron-Operator"

// Route paths, relative to the group Mount is given.
const (
	PathActions         = "/remediation/actions"
	PathAction          = "/remediation/actions/:id"
	PathRecommendations = "/remediation/recommendations"
	PathRecommendation  = "/remediation/recommendations/:id"
	PathAudit           = "/remediation/audit"
	PathPolicies        = "/remediation/policies"
	PathPolicy          = "/remediation/policies/:name"
	PathWhatIf          = "/remediation/policies/:name/whatif"
	PathKillSwitch      = "/remediation/kill-switch"
	PathAlertmanager    = "/remediation/alertmanager"
)

var codeStatus = map[string]int{
	novacron.EINVALID:      http.StatusBadRequest,
	novacron.ENOTFOUND:     http.StatusNotFound,
	novacron.ECONFLICT:     http.StatusConflict,
	novacron.EUNAUTHORIZED: http.StatusUnauthorized,
	novacron.EUNSUPPORTED:  http.StatusNotImplemented,
	novacron.EUNAVAILABLE:  http.StatusServiceUnavailable,
	novacron.EINTERNAL:     http.StatusInternalServerError,
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Handlers pass c.Request.Context(), never c, to the actuator: gin
// reuses a Context once the handler returns, while database/sql may still
// read the context it was given from a goroutine of its own.

func fail(c *gin.Context, err error) {
	code := novacron.ErrorCode(err)
	status, ok := codeStatus[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	c.AbortWithStatusJSON(status, errorBody{Error: novacron.ErrorMessage(err), Code: code})
}

// Mount returns the function that adds the remediation routes to a
// group (the API's authenticated /api/v1).
func Mount(a *actuator.Actuator) func(*gin.RouterGroup) {
	return func(g *gin.RouterGroup) {
		op := operator(a.OperatorToken())
		g.GET(PathActions, listActions(a, nil))
		g.GET(PathAction, getAction(a))
		g.POST(PathAction+"/approve", op, decide(a, a.Approve))
		g.POST(PathAction+"/reject", op, decide(a, a.Reject))
		g.POST(PathAction+"/execute", op, decide(a, a.Execute))
		g.POST(PathAction+"/cancel", op, decide(a, a.Cancel))
		g.POST(PathAction+"/rollback", op, decide(a, a.Rollback))
		g.GET(PathRecommendations, listActions(a, []string{actuator.StateProposed}))
		g.GET(PathRecommendation, getAction(a))
		g.GET(PathAudit, audit(a))
		g.GET(PathPolicies, func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"items": a.Policies()}) })
		g.PUT(PathPolicy, op, putPolicy(a))
		g.POST(PathWhatIf, whatIf(a))
		g.GET(PathKillSwitch, func(c *gin.Context) {
			on, err := a.KillSwitch(c.Request.Context())
			if err != nil {
				fail(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"enabled": on})
		})
		g.PUT(PathKillSwitch, op, func(c *gin.Context) {
			var body struct {
				Enabled *bool `json:"enabled"`
			}
			if err := c.ShouldBindJSON(&body); err != nil || body.Enabled == nil {
				fail(c, novacron.Errorf(novacron.EINVALID, "body must be {\"enabled\": true|false}"))
				return
			}
			if err := a.SetKillSwitch(c.Request.Context(), *body.Enabled, operatorName(c)); err != nil {
				fail(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"enabled": *body.Enabled})
		})
		g.POST(PathAlertmanager, func(c *gin.Context) {
			n, err := a.ConsumeWebhook(c.Request.Context(), c.Request.Body)
			if err != nil {
				fail(c, err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"alerts": n})
		})
	}
}

// operator refuses requests without the operator token.
func operator(token string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if token == "" {
			c.AbortWithStatusJSON(http.StatusForbidden, errorBody{Error: "no operator token is configured (actuator operator_token)", Code: novacron.EUNAUTHORIZED})
			return
		}
		got := c.GetHeader(OperatorHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			c.AbortWithStatusJSON(http.StatusForbidden, errorBody{Error: "this route needs the operator token in " + OperatorHeader, Code: novacron.EUNAUTHORIZED})
			return
		}
		c.Next()
	}
}

func operatorName(c *gin.Context) string {
	if n := strings.TrimSpace(c.GetHeader(OperatorNameHeader)); n != "" && len(n) <= 100 {
		return "operator:" + n
	}
	return "operator"
}

func intParam(c *gin.Context, name string, def, lo, hi int) (int, error) {
	s := c.Query(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, novacron.Errorf(novacron.EINVALID, "%s must be an integer between %d and %d, got %q", name, lo, hi, s)
	}
	return n, nil
}

func listActions(a *actuator.Actuator, states []string) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, err := intParam(c, "limit", 100, 1, 1000)
		if err != nil {
			fail(c, err)
			return
		}
		offset, err := intParam(c, "offset", 0, 0, 1<<30)
		if err != nil {
			fail(c, err)
			return
		}
		f := actuator.ActionFilter{States: states, VMID: c.Query("vm_id"), Policy: c.Query("policy"), Kind: c.Query("kind"), Limit: limit, Offset: offset}
		if s := c.Query("state"); s != "" && states == nil {
			f.States = strings.Split(s, ",")
		}
		items, err := a.List(c.Request.Context(), f)
		if err != nil {
			fail(c, err)
			return
		}
		if items == nil {
			items = []actuator.Action{}
		}
		c.JSON(http.StatusOK, gin.H{"items": items, "limit": limit, "offset": offset})
	}
}

func getAction(a *actuator.Actuator) gin.HandlerFunc {
	return func(c *gin.Context) {
		act, err := a.Get(c.Request.Context(), c.Param("id"))
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, act)
	}
}

func decide(a *actuator.Actuator, fn func(context.Context, string, actuator.Decision) (actuator.Action, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var body struct {
			Comment string `json:"comment"`
		}
		if c.Request.ContentLength != 0 {
			if err := c.ShouldBindJSON(&body); err != nil {
				fail(c, novacron.Errorf(novacron.EINVALID, "body must be {\"comment\": \"...\"}"))
				return
			}
		}
		act, err := fn(c.Request.Context(), c.Param("id"), actuator.Decision{Actor: operatorName(c), Comment: body.Comment})
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, act)
	}
}

func audit(a *actuator.Actuator) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, err := intParam(c, "limit", 100, 1, 1000)
		if err != nil {
			fail(c, err)
			return
		}
		items, err := a.Audit(c.Request.Context(), actuator.AuditFilter{ActionID: c.Query("action_id"), VMID: c.Query("vm_id"), Limit: limit})
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"items": items})
	}
}

func putPolicy(a *actuator.Actuator) gin.HandlerFunc {
	return func(c *gin.Context) {
		var p actuator.Policy
		if err := c.ShouldBindJSON(&p); err != nil {
			fail(c, novacron.Errorf(novacron.EINVALID, "decode policy: %v", err))
			return
		}
		if p.Name == "" {
			p.Name = c.Param("name")
		}
		if p.Name != c.Param("name") {
			fail(c, novacron.Errorf(novacron.EINVALID, "policy name %q does not match the path", p.Name))
			return
		}
		if err := a.PutPolicy(c.Request.Context(), p); err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, p)
	}
}

func whatIf(a *actuator.Actuator) gin.HandlerFunc {
	return func(c *gin.Context) {
		days, err := intParam(c, "days", 7, 1, 366)
		if err != nil {
			fail(c, err)
			return
		}
		p := actuator.Policy{Name: c.Param("name")}
		if c.Request.ContentLength > 0 {
			if err := c.ShouldBindJSON(&p); err != nil {
				fail(c, novacron.Errorf(novacron.EINVALID, "decode policy: %v", err))
				return
			}
		}
		res, err := a.WhatIf(c.Request.Context(), p, days)
		if err != nil {
			fail(c, err)
			return
		}
		c.JSON(http.StatusOK, res)
	}
}
