package analytics

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/novacron/novacron"
)

// RangeQuerier runs PromQL range queries. HTTPQuerier implements it on
// the Prometheus HTTP API (the embedded store's API, VictoriaMetrics,
// Prometheus).
type RangeQuerier interface {
	// QueryRange returns the series of query evaluated every step from
	// start to end, samples in time order.
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]novacron.Series, error)
}

// HTTPQuerier is a RangeQuerier on /api/v1/query_range of a Prometheus
// HTTP API. It is safe for concurrent use.
type HTTPQuerier struct {
	// URL is the API's base, without /api/v1 ("http://127.0.0.1:9090").
	URL string
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// Header is added to every request (Authorization for a NovaCron API).
	Header http.Header
}

// QueryRange implements RangeQuerier.
func (q *HTTPQuerier) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]novacron.Series, error) {
	form := url.Values{
		"query": {query},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1000, 'f', -1, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1000, 'f', -1, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	u := strings.TrimRight(q.URL, "/") + "/api/v1/query_range"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("query_range %q at %s: %w", query, q.URL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, vs := range q.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	c := q.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query_range %q at %s: %w", query, q.URL, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&body); err != nil {
		return nil, fmt.Errorf("query_range %q at %s: HTTP %d: decode: %w", query, q.URL, resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query_range %q at %s: HTTP %d: %s", query, q.URL, resp.StatusCode, body.Error)
	}
	if body.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("query_range %q at %s: result type %q, want matrix", query, q.URL, body.Data.ResultType)
	}
	out := make([]novacron.Series, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		ls := make(novacron.Labels, 0, len(r.Metric))
		for k, v := range r.Metric {
			ls = append(ls, novacron.Label{Name: k, Value: v})
		}
		s := novacron.Series{Labels: ls.Sort(), Samples: make([]novacron.Sample, 0, len(r.Values))}
		for _, pv := range r.Values {
			ts, ok1 := pv[0].(float64)
			vs, ok2 := pv[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("query_range %q at %s: malformed point %v", query, q.URL, pv)
			}
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, fmt.Errorf("query_range %q at %s: value %q: %w", query, q.URL, vs, err)
			}
			s.Samples = append(s.Samples, novacron.Sample{T: int64(math.Round(ts * 1000)), V: v})
		}
		out = append(out, s)
	}
	return out, nil
}

// BackfillOptions configure Backfill.
type BackfillOptions struct {
	// Start and End bound the history read. Required, Start before End.
	Start, End time.Time
	// Step is the resolution of the history (the query_range step).
	// Default 1m.
	Step time.Duration
	// Chunk is the time span of one query per selector; the history is
	// read chunk by chunk, oldest first. Default 6h.
	Chunk time.Duration
	// Selectors are the PromQL series selectors to read. Default:
	// BackfillSelectors of the processor's rules.
	Selectors []string
	// Partitions is the partition count of the samples topic: each series
	// is warmed in the partition its records are published to, so the
	// stage finds it in that partition's checkpoint. Required, at least 1.
	Partitions int32
	// Progress receives one line per chunk; nil for none.
	Progress io.Writer
}

// BackfillStats is what a Backfill did.
type BackfillStats struct {
	// Queries run, Series seen (counted once per chunk), Samples fed.
	Queries, Series, Samples int
}

// BackfillSelectors returns one selector per rule that models something:
// {__name__=~"<metric>"} with the rule's label matchers.
func BackfillSelectors(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		if r.Skip {
			continue
		}
		var b strings.Builder
		b.WriteString(`{__name__=~`)
		b.WriteString(strconv.Quote(r.Metric))
		for n, re := range r.Labels {
			b.WriteString("," + n + "=~" + strconv.Quote(re))
		}
		b.WriteString("}")
		out = append(out, b.String())
	}
	return out
}

// PartitionOf returns the samples partition a series' records land on:
// the Kafka default partitioner (murmur2) over publish.SeriesKey, as both
// buses place keyed records.
func PartitionOf(ls novacron.Labels, partitions int32) int32 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ls.Hash())
	key := []byte(hex.EncodeToString(b[:]))
	return int32(int(murmur2(key)&0x7fffffff) % int(partitions))
}

// murmur2 is the 32-bit MurmurHash2 with Kafka's seed.
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := binary.LittleEndian.Uint32(b)
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		b = b[4:]
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// Backfill reads history through q and feeds it to p's models, so a new
// processor does not start cold: chunk by chunk, oldest first, every
// selector's series in the partition PartitionOf gives. Samples at or
// before a series' newest are dropped as out of order, so backfilling a
// processor restored from checkpoints only adds what they lack. The
// derived series and events the history produces are discarded: they
// describe the past, and the stage did not see it live. The caller
// checkpoints p afterwards (Processor.Snapshot).
func Backfill(ctx context.Context, q RangeQuerier, p *Processor, opts BackfillOptions) (BackfillStats, error) {
	var st BackfillStats
	if opts.Step <= 0 {
		opts.Step = time.Minute
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 6 * time.Hour
	}
	if opts.Chunk < opts.Step {
		opts.Chunk = opts.Step
	}
	if opts.Selectors == nil {
		opts.Selectors = BackfillSelectors(p.cfg.Rules)
	}
	var errs []error
	if !opts.Start.Before(opts.End) {
		errs = append(errs, fmt.Errorf("backfill: start (%s) must be before end (%s)", opts.Start, opts.End))
	}
	if opts.Partitions < 1 {
		errs = append(errs, fmt.Errorf("backfill: partitions must be at least 1, got %d", opts.Partitions))
	}
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	var out Output
	began := time.Now()
	total := opts.End.Sub(opts.Start)
	for from := opts.Start; from.Before(opts.End); {
		to := from.Add(opts.Chunk)
		if to.After(opts.End) {
			to = opts.End
		}
		chunkSeries, chunkSamples := 0, 0
		for _, sel := range opts.Selectors {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			series, err := q.QueryRange(ctx, sel, from, to, opts.Step)
			st.Queries++
			if err != nil {
				return st, fmt.Errorf("backfill %s from %s to %s: %w", sel, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
			}
			for _, s := range series {
				p.Process(PartitionOf(s.Labels, opts.Partitions), s, &out)
				out.Reset()
				chunkSeries++
				chunkSamples += len(s.Samples)
			}
		}
		st.Series += chunkSeries
		st.Samples += chunkSamples
		if opts.Progress != nil {
			done := to.Sub(opts.Start)
			fmt.Fprintf(opts.Progress, "backfill: %s to %s: %d series, %d samples (%.0f%%, %s elapsed)\n",
				from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), chunkSeries, chunkSamples,
				100*float64(done)/float64(total), time.Since(began).Round(time.Millisecond))
		}
		// Chunks share their boundary; the repeated point is dropped as
		// out of order.
		from = to
	}
	return st, nil
}
