package promapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// maxPoints is the most points per series a range query may ask for, as
// in Prometheus.
const maxPoints = 11000

// Backend is what the handler reads from: the PromQL engine, the storage
// it queries and the parser it parses with. *tsdbstore.Store implements
// it.
type Backend interface {
	Engine() *promql.Engine
	Queryable() promstorage.Queryable
	Parser() parser.Parser
}

// Handler serves the Prometheus query API from a Backend. It is safe for
// concurrent use.
type Handler struct {
	b   Backend
	now func() time.Time
}

// Option configures a Handler.
type Option func(*Handler)

// WithNow sets the clock used when a query has no time parameter
// (default time.Now).
func WithNow(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// NewHandler returns a Handler over b.
func NewHandler(b Backend, opts ...Option) *Handler {
	h := &Handler{b: b, now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

// endpoint returns the part of path after "/api/v1/", so the handler
// works wherever it is mounted; ok is false for other paths.
func endpoint(path string) (string, bool) {
	const prefix = "/api/v1/"
	i := strings.LastIndex(path, prefix)
	if i < 0 {
		return "", false
	}
	return path[i+len(prefix):], true
}

// labelValuesName returns <name> for a "label/<name>/values" endpoint.
func labelValuesName(ep string) (string, bool) {
	if !strings.HasPrefix(ep, "label/") || !strings.HasSuffix(ep, "/values") {
		return "", false
	}
	name := strings.TrimSuffix(strings.TrimPrefix(ep, "label/"), "/values")
	return name, name != "" && !strings.Contains(name, "/")
}

// ServeHTTP routes /api/v1/query, /api/v1/query_range, /api/v1/series,
// /api/v1/labels and /api/v1/label/<name>/values; parameters come from the
// URL query or a form-encoded POST body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, ok := endpoint(r.URL.Path)
	if !ok {
		WriteError(w, ErrorNotFound, fmt.Errorf("unknown path %q", r.URL.Path))
		return
	}
	var fn func(http.ResponseWriter, *http.Request)
	switch ep {
	case "query":
		fn = h.query
	case "query_range":
		fn = h.queryRange
	case "series":
		fn = h.series
	case "labels":
		fn = h.labelNames
	default:
		name, ok := labelValuesName(ep)
		if !ok {
			WriteError(w, ErrorNotFound, fmt.Errorf("unknown path %q", r.URL.Path))
			return
		}
		fn = func(w http.ResponseWriter, r *http.Request) { h.labelValues(w, r, name) }
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		WriteError(w, ErrorBadData, fmt.Errorf("method %s not allowed", r.Method))
		return
	}
	if err := r.ParseForm(); err != nil {
		WriteError(w, ErrorBadData, fmt.Errorf("error parsing form values: %w", err))
		return
	}
	fn(w, r)
}

func (h *Handler) withTimeout(r *http.Request) (context.Context, context.CancelFunc, error) {
	d, err := timeoutParam(r)
	if err != nil {
		return nil, nil, err
	}
	if d == 0 {
		ctx, cancel := context.WithCancel(r.Context())
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return ctx, cancel, nil
}

func (h *Handler) query(w http.ResponseWriter, r *http.Request) {
	ts, err := timeParam(r, "time", h.now())
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	ctx, cancel, err := h.withTimeout(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	defer cancel()
	qs := r.Form.Get("query")
	if qs == "" {
		WriteError(w, ErrorBadData, errors.New(`invalid parameter "query": query is empty`))
		return
	}
	qry, err := h.b.Engine().NewInstantQuery(ctx, h.b.Queryable(), nil, qs, ts)
	if err != nil {
		WriteError(w, ErrorBadData, fmt.Errorf("invalid parameter %q: %w", "query", err))
		return
	}
	h.exec(ctx, w, qry)
}

func (h *Handler) queryRange(w http.ResponseWriter, r *http.Request) {
	start, err := requiredTime(r, "start")
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	end, err := requiredTime(r, "end")
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	if end.Before(start) {
		WriteError(w, ErrorBadData, errors.New(`invalid parameter "end": end timestamp must not be before start time`))
		return
	}
	stepStr := r.Form.Get("step")
	if stepStr == "" {
		WriteError(w, ErrorBadData, errors.New(`invalid parameter "step": missing`))
		return
	}
	step, err := ParseDuration(stepStr)
	if err != nil {
		WriteError(w, ErrorBadData, fmt.Errorf("invalid parameter %q: %w", "step", err))
		return
	}
	if step <= 0 {
		WriteError(w, ErrorBadData, errors.New(`invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer`))
		return
	}
	if end.Sub(start)/step > maxPoints {
		WriteError(w, ErrorBadData, errors.New("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	ctx, cancel, err := h.withTimeout(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	defer cancel()
	qs := r.Form.Get("query")
	if qs == "" {
		WriteError(w, ErrorBadData, errors.New(`invalid parameter "query": query is empty`))
		return
	}
	qry, err := h.b.Engine().NewRangeQuery(ctx, h.b.Queryable(), nil, qs, start, end, step)
	if err != nil {
		WriteError(w, ErrorBadData, fmt.Errorf("invalid parameter %q: %w", "query", err))
		return
	}
	h.exec(ctx, w, qry)
}

func requiredTime(r *http.Request, name string) (time.Time, error) {
	if r.Form.Get(name) == "" {
		return time.Time{}, fmt.Errorf("invalid parameter %q: missing", name)
	}
	return timeParam(r, name, time.Time{})
}

func (h *Handler) exec(ctx context.Context, w http.ResponseWriter, qry promql.Query) {
	defer qry.Close()
	res := qry.Exec(ctx)
	warnings, infos := res.Warnings.AsStrings("", 10, 10)
	if res.Err != nil {
		WriteError(w, queryErrorType(res.Err), res.Err)
		return
	}
	writeSuccess(w, queryData{ResultType: string(res.Value.Type()), Result: encodeValue(res.Value)}, warnings, infos)
}

// queryErrorType classifies a query failure as Prometheus does.
func queryErrorType(err error) string {
	var (
		eqc promql.ErrQueryCanceled
		eqt promql.ErrQueryTimeout
		es  promql.ErrStorage
	)
	switch {
	case errors.As(err, &eqc), errors.Is(err, context.Canceled):
		return ErrorCanceled
	case errors.As(err, &eqt), errors.Is(err, context.DeadlineExceeded):
		return ErrorTimeout
	case errors.As(err, &es):
		return ErrorInternal
	}
	return ErrorExec
}

// matchers parses every match[] parameter.
func (h *Handler) matchers(r *http.Request) ([][]*labels.Matcher, error) {
	var out [][]*labels.Matcher
	for _, s := range r.Form["match[]"] {
		ms, err := h.b.Parser().ParseMetricSelector(s)
		if err != nil {
			return nil, fmt.Errorf("invalid parameter %q: %w", "match[]", err)
		}
		out = append(out, ms)
	}
	return out, nil
}

// rangeParams parses start, end and limit of the metadata endpoints.
func rangeParams(r *http.Request) (start, end time.Time, limit int, err error) {
	if start, err = timeParam(r, "start", minTime); err != nil {
		return
	}
	if end, err = timeParam(r, "end", maxTime); err != nil {
		return
	}
	if end.Before(start) {
		err = errors.New(`invalid parameter "end": end timestamp must not be before start time`)
		return
	}
	limit, err = limitParam(r)
	return
}

func (h *Handler) querier(start, end time.Time) (promstorage.Querier, error) {
	return h.b.Queryable().Querier(start.UnixMilli(), end.UnixMilli())
}

func (h *Handler) series(w http.ResponseWriter, r *http.Request) {
	start, end, limit, err := rangeParams(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	sets, err := h.matchers(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	if len(sets) == 0 {
		WriteError(w, ErrorBadData, errors.New("no match[] parameter provided"))
		return
	}
	ctx, cancel, err := h.withTimeout(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	defer cancel()
	q, err := h.querier(start, end)
	if err != nil {
		WriteError(w, ErrorExec, err)
		return
	}
	defer q.Close()
	hints := &promstorage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}
	var all []promstorage.SeriesSet
	for _, ms := range sets {
		all = append(all, q.Select(ctx, true, hints, ms...))
	}
	set := promstorage.NewMergeSeriesSet(all, 0, promstorage.ChainedSeriesMerge)
	out := []map[string]string{}
	var warnings []string
	for set.Next() {
		if limit > 0 && len(out) >= limit {
			warnings = append(warnings, "results truncated due to limit")
			break
		}
		out = append(out, labelsMap(set.At().Labels()))
	}
	if err := set.Err(); err != nil {
		WriteError(w, queryErrorType(err), err)
		return
	}
	warnings = append(warnings, annotationStrings(set.Warnings())...)
	writeSuccess(w, out, warnings, nil)
}

func (h *Handler) labelNames(w http.ResponseWriter, r *http.Request) {
	h.labelsCommon(w, r, func(ctx context.Context, q promstorage.Querier, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(ctx, hints, ms...)
	})
}

func (h *Handler) labelValues(w http.ResponseWriter, r *http.Request, name string) {
	if !model.LabelName(name).IsValidLegacy() {
		WriteError(w, ErrorBadData, fmt.Errorf("invalid label name: %q", name))
		return
	}
	h.labelsCommon(w, r, func(ctx context.Context, q promstorage.Querier, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(ctx, name, hints, ms...)
	})
}

type labelFunc func(ctx context.Context, q promstorage.Querier, hints *promstorage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error)

// labelsCommon answers labels and label values: the sorted union over
// every match[] set (or over everything without match[]).
func (h *Handler) labelsCommon(w http.ResponseWriter, r *http.Request, fn labelFunc) {
	start, end, limit, err := rangeParams(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	sets, err := h.matchers(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	ctx, cancel, err := h.withTimeout(r)
	if err != nil {
		WriteError(w, ErrorBadData, err)
		return
	}
	defer cancel()
	q, err := h.querier(start, end)
	if err != nil {
		WriteError(w, ErrorExec, err)
		return
	}
	defer q.Close()
	hints := &promstorage.LabelHints{}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]struct{}{}
	var annos annotations.Annotations
	for _, ms := range sets {
		vals, a, err := fn(ctx, q, hints, ms...)
		if err != nil {
			WriteError(w, queryErrorType(err), err)
			return
		}
		annos.Merge(a)
		for _, v := range vals {
			seen[v] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	warnings := annotationStrings(annos)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
		warnings = append(warnings, "results truncated due to limit")
	}
	writeSuccess(w, out, warnings, nil)
}

func annotationStrings(a annotations.Annotations) []string {
	w, _ := a.AsStrings("", 10, 10)
	return w
}
