package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	"github.com/novacron/novacron/internal/storage/promapi"
)

// Service is what the handlers use; *alerting.Alerting implements it.
type Service interface {
	Alerts(ctx context.Context, q alerting.AlertsQuery) ([]*alerting.Alert, error)
	History(ctx context.Context, q alerting.HistoryQuery) ([]alerting.Transition, error)
	Silences(ctx context.Context) ([]alerting.Silence, error)
	CreateSilence(ctx context.Context, s alerting.Silence) (alerting.Silence, error)
	ExpireSilence(ctx context.Context, id string) error
	Thresholds(ctx context.Context) ([]alerting.Threshold, error)
	Threshold(ctx context.Context, id string) (alerting.Threshold, error)
	CreateThreshold(ctx context.Context, t alerting.Threshold) (alerting.Threshold, error)
	UpdateThreshold(ctx context.Context, t alerting.Threshold) (alerting.Threshold, error)
	DeleteThreshold(ctx context.Context, id string) error
	RuleGroups() []alerting.RuleGroup
}

var _ Service = (*alerting.Alerting)(nil)

// statusOf maps domain error codes to HTTP statuses, as package api does.
var statusOf = map[string]int{
	novacron.EINVALID:      http.StatusBadRequest,
	novacron.ENOTFOUND:     http.StatusNotFound,
	novacron.ECONFLICT:     http.StatusConflict,
	novacron.EUNAUTHORIZED: http.StatusUnauthorized,
	novacron.EUNSUPPORTED:  http.StatusNotImplemented,
	novacron.EUNAVAILABLE:  http.StatusServiceUnavailable,
	novacron.EINTERNAL:     http.StatusInternalServerError,
}

type handlers struct {
	s      Service
	logger *slog.Logger
}

// Mount returns the function that registers alerting's routes on the
// API's authenticated /api/v1 group:
//
//	GET    /alerts                 current alerts (filter, state, source, muted)
//	GET    /alerts/history         state changes, newest first
//	GET    /silences               silences
//	POST   /silences               create (or update, with an id) a silence
//	DELETE /silences/:id           expire a silence
//	GET    /thresholds             thresholds
//	POST   /thresholds             create a threshold
//	GET    /thresholds/:id         one threshold
//	PUT    /thresholds/:id         replace a threshold
//	DELETE /thresholds/:id         delete a threshold
//	GET    /rules                  rule groups and their rules' state
//
// logger receives internal errors (nil discards them).
func Mount(s Service, logger *slog.Logger) func(*gin.RouterGroup) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handlers{s: s, logger: logger.With("component", "alerting-api")}
	return func(g *gin.RouterGroup) {
		g.GET("/alerts", h.alerts)
		g.GET("/alerts/history", h.history)
		g.GET("/silences", h.silences)
		g.POST("/silences", h.createSilence)
		g.DELETE("/silences/:id", h.expireSilence)
		g.GET("/thresholds", h.thresholds)
		g.POST("/thresholds", h.createThreshold)
		g.GET("/thresholds/:id", h.threshold)
		g.PUT("/thresholds/:id", h.updateThreshold)
		g.DELETE("/thresholds/:id", h.deleteThreshold)
		g.GET("/rules", h.rules)
	}
}

// errorBody is the API's error shape.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func (h *handlers) fail(c *gin.Context, err error) {
	code := novacron.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == novacron.EINTERNAL {
		h.logger.Error("API request failed", "method", c.Request.Method, "path", c.FullPath(), "err", err)
	}
	c.AbortWithStatusJSON(status, errorBody{Error: novacron.ErrorMessage(err), Code: code})
}

func invalid(format string, args ...any) error {
	return novacron.Errorf(novacron.EINVALID, format, args...)
}

// AlertList is the body of GET /alerts.
type AlertList struct {
	Alerts []*alerting.Alert `json:"alerts"`
}

func (h *handlers) alerts(c *gin.Context) {
	var q alerting.AlertsQuery
	if f := c.Query("filter"); f != "" {
		ms, err := alerting.ParseMatchers(f)
		if err != nil {
			h.fail(c, invalid("filter %q: %v", f, err))
			return
		}
		q.Matchers = ms
	}
	switch q.State = c.Query("state"); q.State {
	case "", alerting.StatePending, alerting.StateFiring:
	default:
		h.fail(c, invalid("state %q: must be pending or firing", q.State))
		return
	}
	switch q.Source = c.Query("source"); q.Source {
	case "", alerting.SourceRule, alerting.SourceThreshold, alerting.SourceEvent:
	default:
		h.fail(c, invalid("source %q: must be rule, threshold or event", q.Source))
		return
	}
	if m := c.Query("muted"); m != "" {
		b, err := strconv.ParseBool(m)
		if err != nil {
			h.fail(c, invalid("muted %q: must be true or false", m))
			return
		}
		q.Muted = &b
	}
	as, err := h.s.Alerts(c.Request.Context(), q)
	if err != nil {
		h.fail(c, err)
		return
	}
	if as == nil {
		as = []*alerting.Alert{}
	}
	c.JSON(http.StatusOK, AlertList{Alerts: as})
}

// HistoryPage is the body of GET /alerts/history. Next, when non-zero, is
// the before parameter of the next (older) page.
type HistoryPage struct {
	History []alerting.Transition `json:"history"`
	Next    int64                 `json:"next,omitempty"`
}

func (h *handlers) history(c *gin.Context) {
	q := alerting.HistoryQuery{Alertname: c.Query("alertname"), Fingerprint: c.Query("fingerprint")}
	if f := c.Query("filter"); f != "" {
		ms, err := alerting.ParseMatchers(f)
		if err != nil {
			h.fail(c, invalid("filter %q: %v", f, err))
			return
		}
		q.Matchers = ms
	}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if v := c.Query(name); v != "" {
			t, err := promapi.ParseTime(v)
			if err != nil {
				h.fail(c, invalid("%s %q: %v", name, v, err))
				return
			}
			*dst = t
		}
	}
	for name, dst := range map[string]*int64{"before": &q.Before, "limit": nil} {
		v := c.Query(name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || (name == "limit" && (n < 1 || n > 1000)) {
			h.fail(c, invalid("%s %q: must be an integer (limit 1..1000)", name, v))
			return
		}
		if dst != nil {
			*dst = n
		} else {
			q.Limit = int(n)
		}
	}
	hs, err := h.s.History(c.Request.Context(), q)
	if err != nil {
		h.fail(c, err)
		return
	}
	page := HistoryPage{History: hs}
	if hs == nil {
		page.History = []alerting.Transition{}
	}
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	if len(hs) == limit {
		page.Next = hs[len(hs)-1].ID
	}
	c.JSON(http.StatusOK, page)
}

// SilenceList is the body of GET /silences.
type SilenceList struct {
	Silences []alerting.Silence `json:"silences"`
}

func (h *handlers) silences(c *gin.Context) {
	ss, err := h.s.Silences(c.Request.Context())
	if err != nil {
		h.fail(c, err)
		return
	}
	if ss == nil {
		ss = []alerting.Silence{}
	}
	c.JSON(http.StatusOK, SilenceList{Silences: ss})
}

func (h *handlers) createSilence(c *gin.Context) {
	var s alerting.Silence
	if err := bind(c, &s); err != nil {
		h.fail(c, err)
		return
	}
	out, err := h.s.CreateSilence(c.Request.Context(), s)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) expireSilence(c *gin.Context) {
	if err := h.s.ExpireSilence(c.Request.Context(), c.Param("id")); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ThresholdList is the body of GET /thresholds.
type ThresholdList struct {
	Thresholds []alerting.Threshold `json:"thresholds"`
}

func (h *handlers) thresholds(c *gin.Context) {
	ts, err := h.s.Thresholds(c.Request.Context())
	if err != nil {
		h.fail(c, err)
		return
	}
	if ts == nil {
		ts = []alerting.Threshold{}
	}
	c.JSON(http.StatusOK, ThresholdList{Thresholds: ts})
}

func (h *handlers) threshold(c *gin.Context) {
	t, err := h.s.Threshold(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, t)
}

func (h *handlers) createThreshold(c *gin.Context) {
	var t alerting.Threshold
	if err := bind(c, &t); err != nil {
		h.fail(c, err)
		return
	}
	out, err := h.s.CreateThreshold(c.Request.Context(), t)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, out)
}

func (h *handlers) updateThreshold(c *gin.Context) {
	var t alerting.Threshold
	if err := bind(c, &t); err != nil {
		h.fail(c, err)
		return
	}
	if t.ID != "" && t.ID != c.Param("id") {
		h.fail(c, invalid("id %q in the body does not match the path's %q", t.ID, c.Param("id")))
		return
	}
	t.ID = c.Param("id")
	out, err := h.s.UpdateThreshold(c.Request.Context(), t)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) deleteThreshold(c *gin.Context) {
	if err := h.s.DeleteThreshold(c.Request.Context(), c.Param("id")); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// RuleList is the body of GET /rules.
type RuleList struct {
	Groups []alerting.RuleGroup `json:"groups"`
}

func (h *handlers) rules(c *gin.Context) {
	gs := h.s.RuleGroups()
	if gs == nil {
		gs = []alerting.RuleGroup{}
	}
	c.JSON(http.StatusOK, RuleList{Groups: gs})
}

// bind decodes a JSON body of at most 1 MiB, rejecting unknown fields.
func bind(c *gin.Context, v any) error {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20)
	dec := newDecoder(c)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return invalid("body larger than 1 MiB")
		}
		return invalid("body: %v", err)
	}
	return nil
}
