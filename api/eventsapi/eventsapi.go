// Package eventsapi serves the analytics results of the events index over
// the REST API: anomalies, incidents and forecast breaches with filters,
// sorting and paging, and a server-sent-events stream of new events.
//
// It sits at the read end of the pipeline, on top of pipeline/events. The
// binary mounts it under /api/v1 through api.Deps.Mount, behind the API's
// token check.
package eventsapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/pipeline/events"
)

// Paths served, relative to the /api/v1 group.
const (
	PathAnomalies = "/anomalies"
	PathIncidents = "/incidents"
	PathForecasts = "/forecasts"
	PathStream    = "/events/stream"
)

// MaxLimit is the largest page.
const MaxLimit = 1000

// heartbeat is how often an idle stream sends a comment, so proxies keep
// the connection open.
var heartbeat = 15 * time.Second

// Page is the JSON body of a list.
type Page struct {
	Items  []events.Item `json:"items"`
	Total  int           `json:"total"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
}

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Mount returns the function api.Deps.Mount takes: it adds the routes to
// the /api/v1 group.
func Mount(idx *events.Index) func(*gin.RouterGroup) {
	return func(g *gin.RouterGroup) {
		g.GET(PathAnomalies, list(idx, events.KindAnomaly))
		g.GET(PathIncidents, list(idx, events.KindIncident))
		g.GET(PathForecasts, list(idx, events.KindForecast))
		g.GET(PathStream, stream(idx))
	}
}

func list(idx *events.Index, kind string) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := ParseQuery(c.Request.URL.Query(), kind)
		if err != nil {
			c.AbortWithStatusJSON(http.StatusBadRequest, errorBody{Error: err.Error(), Code: novacron.EINVALID})
			return
		}
		items, total := idx.Find(q)
		if items == nil {
			items = []events.Item{}
		}
		c.JSON(http.StatusOK, Page{Items: items, Total: total, Limit: q.Limit, Offset: q.Offset})
	}
}

// ParseQuery reads the list parameters: vm_id, host, metric, state, from,
// to (RFC 3339 or Unix seconds), sort (start, updated, score; "-" prefix
// or none for descending, "+" for ascending), limit (1..1000, default
// 100) and offset.
func ParseQuery(v map[string][]string, kind string) (events.Query, error) {
	get := func(k string) string {
		if s := v[k]; len(s) > 0 {
			return s[0]
		}
		return ""
	}
	q := events.Query{Kind: kind, VMID: get("vm_id"), Host: get("host"), Metric: get("metric"),
		State: get("state"), Sort: get("sort"), Limit: 100}
	var err error
	if q.From, err = parseTime(get("from")); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.To, err = parseTime(get("to")); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return q, fmt.Errorf("limit: must be an integer from 1 to %d, got %q", MaxLimit, s)
		}
		q.Limit = n
	}
	if s := get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("offset: must be a non-negative integer, got %q", s)
		}
		q.Offset = n
	}
	if q.Sort != "" && !slices.Contains(events.SortKeys, strings.TrimLeft(q.Sort, "+-")) {
		return q, fmt.Errorf("sort: must be one of %v (prefix + for ascending), got %q", events.SortKeys, q.Sort)
	}
	states := map[string][]string{
		events.KindAnomaly:  {events.StateOpen, events.StateClosed},
		events.KindIncident: {events.StateOpen, events.StateClosed},
		events.KindForecast: {events.StatePredicted, events.StateCleared},
	}[kind]
	if q.State != "" && !slices.Contains(states, q.State) {
		return q, fmt.Errorf("state: must be one of %v, got %q", states, q.State)
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return q, fmt.Errorf("to: must not be before from")
	}
	return q, nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("want RFC 3339 or Unix seconds, got %q", s)
	}
	return time.UnixMilli(int64(f * 1000)).UTC(), nil
}

// stream sends every new event as a server-sent event (id: the event ID,
// event: its kind, data: its JSON) until the client goes away. A "kind"
// parameter (repeatable) restricts the kinds.
func stream(idx *events.Index) gin.HandlerFunc {
	return func(c *gin.Context) {
		kinds := c.QueryArray("kind")
		sub := idx.Subscribe()
		defer sub.Close()
		w := c.Writer
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		_, _ = w.WriteString(": novacron events\n\n")
		w.Flush()
		tick := time.NewTicker(heartbeat)
		defer tick.Stop()
		ctx := c.Request.Context()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := w.WriteString(": keep-alive\n\n"); err != nil {
					return
				}
				w.Flush()
			case e := <-sub.C():
				if len(kinds) > 0 && !slices.Contains(kinds, e.Kind) {
					continue
				}
				b, err := json.Marshal(e)
				if err != nil {
					continue
				}
				if _, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", e.ID, e.Kind, b); err != nil {
					return
				}
				w.Flush()
			}
		}
	}
}
