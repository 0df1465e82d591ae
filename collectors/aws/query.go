package aws

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// Namespace of the EC2 metrics CloudWatch publishes for every instance.
const NamespaceEC2 = "AWS/EC2"

// spec says how one CloudWatch metric maps into the catalogue.
type spec struct {
	namespace string // NamespaceEC2, or "" for the agent's namespace
	name      string // CloudWatch metric name
	stat      string // statistic requested
	core      bool   // every instance has it: query without listing
	kind      kind
	device    string // device label for EC2 disk metrics
}

type kind int

const (
	kindCPU          kind = iota // percent → ratio gauge and ∫ CPU seconds
	kindSteal                    // agent percent → ∫ steal seconds
	kindStatus                   // StatusCheckFailed, 0 or 1
	kindNetRxBytes               // Sum → counter
	kindNetTxBytes               // Sum → counter
	kindNetRxPackets             // Sum → counter
	kindNetTxPackets             // Sum → counter
	kindDiskRdBytes              // Sum → counter
	kindDiskWrBytes              // Sum → counter
	kindDiskRdOps                // Sum → counter
	kindDiskWrOps                // Sum → counter
	kindMemUsed                  // agent bytes gauge
	kindDiskUsed                 // agent bytes gauge, per device
	kindDiskTotal                // agent bytes gauge, per device
)

// Device label values of EC2's two families of disk metrics, which
// CloudWatch reports as instance totals.
const (
	DeviceEBS           = "ebs"
	DeviceInstanceStore = "instance_store"
)

// specs lists every metric the collector reads. The core ones exist for
// every instance and are queried at once; the rest only where ListMetrics
// shows them (Nitro instances have EBS*, instance-store ones Disk*; the
// agent's only where it runs), since GetMetricData bills per metric asked.
var specs = []spec{
	{NamespaceEC2, "CPUUtilization", "Average", true, kindCPU, ""},
	{NamespaceEC2, "NetworkIn", "Sum", true, kindNetRxBytes, ""},
	{NamespaceEC2, "NetworkOut", "Sum", true, kindNetTxBytes, ""},
	{NamespaceEC2, "NetworkPacketsIn", "Sum", true, kindNetRxPackets, ""},
	{NamespaceEC2, "NetworkPacketsOut", "Sum", true, kindNetTxPackets, ""},
	{NamespaceEC2, "StatusCheckFailed", "Maximum", true, kindStatus, ""},
	{NamespaceEC2, "EBSReadBytes", "Sum", false, kindDiskRdBytes, DeviceEBS},
	{NamespaceEC2, "EBSWriteBytes", "Sum", false, kindDiskWrBytes, DeviceEBS},
	{NamespaceEC2, "EBSReadOps", "Sum", false, kindDiskRdOps, DeviceEBS},
	{NamespaceEC2, "EBSWriteOps", "Sum", false, kindDiskWrOps, DeviceEBS},
	{NamespaceEC2, "DiskReadBytes", "Sum", false, kindDiskRdBytes, DeviceInstanceStore},
	{NamespaceEC2, "DiskWriteBytes", "Sum", false, kindDiskWrBytes, DeviceInstanceStore},
	{NamespaceEC2, "DiskReadOps", "Sum", false, kindDiskRdOps, DeviceInstanceStore},
	{NamespaceEC2, "DiskWriteOps", "Sum", false, kindDiskWrOps, DeviceInstanceStore},
	{"", "mem_used", "Average", false, kindMemUsed, ""},
	{"", "disk_used", "Average", false, kindDiskUsed, ""},
	{"", "disk_total", "Average", false, kindDiskTotal, ""},
	{"", "cpu_usage_steal", "Average", false, kindSteal, ""},
}

// query is one metric query of one instance.
type query struct {
	inst   *instance
	spec   *spec
	dims   []cwtypes.Dimension
	device string // device label; "" for none
}

// key identifies the query's series across cycles.
func (q *query) key() string {
	return q.inst.vm.ID + "\x00" + q.spec.name + "\x00" + q.device
}

// point is one datapoint as CloudWatch returned it.
type point struct {
	t time.Time
	v float64
}

// listedMetric is one metric from ListMetrics, kept per instance.
type listedMetric struct {
	namespace, name string
	dims            []cwtypes.Dimension
}

// listMetrics returns the target's listed metrics per instance ID, from
// the cache while it is younger than list_metrics_ttl. ListMetrics is
// called with RecentlyActive=PT3H, every page, for the EC2 namespace and,
// with agent_metrics, the agent's.
func (c *Collector) listMetrics(ctx context.Context, t *target, st *targetState, now time.Time) (map[string][]listedMetric, error) {
	if st.listed != nil && c.cfg.ListMetricsTTL > 0 && now.Sub(st.listedAt) < c.cfg.ListMetricsTTL {
		return st.listed, nil
	}
	namespaces := []string{NamespaceEC2}
	if c.cfg.AgentMetrics {
		namespaces = append(namespaces, c.cfg.AgentNamespace)
	}
	out := map[string][]listedMetric{}
	for _, ns := range namespaces {
		p := cloudwatch.NewListMetricsPaginator(t.cw, &cloudwatch.ListMetricsInput{
			Namespace:      aws.String(ns),
			Dimensions:     []cwtypes.DimensionFilter{{Name: aws.String("InstanceId")}},
			RecentlyActive: cwtypes.RecentlyActivePt3h,
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return st.listed, fmt.Errorf("ListMetrics %s in %s (account %s): %s: %w", ns, t.region, t.account, describeErr(err), err)
			}
			for _, m := range page.Metrics {
				id := ""
				for _, d := range m.Dimensions {
					if aws.ToString(d.Name) == "InstanceId" {
						id = aws.ToString(d.Value)
					}
				}
				if id == "" {
					continue
				}
				out[id] = append(out[id], listedMetric{namespace: ns, name: aws.ToString(m.MetricName), dims: m.Dimensions})
			}
		}
	}
	st.listed, st.listedAt = out, now
	return out, nil
}

// plan builds the metric queries of the running instances: the core EC2
// metrics of each, and the listed optional ones.
func (c *Collector) plan(insts []*instance, listed map[string][]listedMetric) []*query {
	var qs []*query
	for _, in := range insts {
		if in.vm.State != "running" {
			continue
		}
		idDim := []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(in.vm.ID)}}
		for i := range specs {
			s := &specs[i]
			if s.core {
				qs = append(qs, &query{inst: in, spec: s, dims: idDim, device: s.device})
			}
		}
		seen := map[string]bool{}
		for _, lm := range listed[in.vm.ID] {
			for i := range specs {
				s := &specs[i]
				if s.core || s.name != lm.name {
					continue
				}
				ns := s.namespace
				if ns == "" {
					ns = c.cfg.AgentNamespace
				}
				if ns != lm.namespace {
					continue
				}
				q := &query{inst: in, spec: s, dims: lm.dims, device: s.device}
				if ns != NamespaceEC2 && !agentDimsWanted(s, lm.dims, &q.device) {
					continue
				}
				if k := q.key(); !seen[k] {
					seen[k] = true
					qs = append(qs, q)
				}
			}
		}
	}
	return qs
}

// agentDimsWanted picks the agent metric variants the catalogue needs:
// disk metrics per device (the device label), steal for all CPUs only.
func agentDimsWanted(s *spec, dims []cwtypes.Dimension, device *string) bool {
	get := func(name string) string {
		for _, d := range dims {
			if aws.ToString(d.Name) == name {
				return aws.ToString(d.Value)
			}
		}
		return ""
	}
	switch s.kind {
	case kindDiskUsed, kindDiskTotal:
		*device = get("device")
		return *device != ""
	case kindSteal:
		cpu := get("cpu")
		return cpu == "" || cpu == "cpu-total"
	}
	return true
}

// fetch runs the queries over [start, end) with GetMetricData, at most
// max_queries_per_request per call, following NextToken. It returns the
// datapoints per query, oldest first. A failed call loses its batch (the
// error is returned with the others' results); a query whose status is
// InternalError or Forbidden is counted and left out.
func (c *Collector) fetch(ctx context.Context, t *target, qs []*query, start, end time.Time) (map[*query][]point, error) {
	out := make(map[*query][]point, len(qs))
	period := int32(c.cfg.Period / time.Second)
	var errs []string
	var firstErr error
	for lo := 0; lo < len(qs); lo += c.cfg.MaxQueriesPerRequest {
		batch := qs[lo:min(lo+c.cfg.MaxQueriesPerRequest, len(qs))]
		in := &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start),
			EndTime:   aws.Time(end),
			ScanBy:    cwtypes.ScanByTimestampAscending,
		}
		byID := make(map[string]*query, len(batch))
		for i, q := range batch {
			id := "q" + strconv.Itoa(i)
			byID[id] = q
			ns := q.spec.namespace
			if ns == "" {
				ns = c.cfg.AgentNamespace
			}
			in.MetricDataQueries = append(in.MetricDataQueries, cwtypes.MetricDataQuery{
				Id: aws.String(id),
				MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String(ns), MetricName: aws.String(q.spec.name), Dimensions: q.dims},
					Period: aws.Int32(period),
					Stat:   aws.String(q.spec.stat),
				},
				ReturnData: aws.Bool(true),
			})
		}
		got := map[*query][]point{}
		failed := map[*query]bool{}
		p := cloudwatch.NewGetMetricDataPaginator(t.cw, in)
		var err error
		for p.HasMorePages() {
			var page *cloudwatch.GetMetricDataOutput
			page, err = p.NextPage(ctx)
			if err != nil {
				break
			}
			c.guard.chargeMetrics(len(batch))
			for _, r := range page.MetricDataResults {
				q := byID[aws.ToString(r.Id)]
				if q == nil {
					continue
				}
				switch r.StatusCode {
				case cwtypes.StatusCodeInternalError, cwtypes.StatusCodeForbidden:
					if !failed[q] {
						failed[q] = true
						c.m.queryErrors.WithLabelValues(queryErrStatus).Inc()
					}
					continue
				}
				n := min(len(r.Timestamps), len(r.Values))
				for i := range n {
					got[q] = append(got[q], point{t: r.Timestamps[i], v: r.Values[i]})
				}
			}
			for _, msg := range page.Messages {
				errs = append(errs, aws.ToString(msg.Code)+": "+aws.ToString(msg.Value))
			}
		}
		if err != nil {
			c.m.queryErrors.WithLabelValues(queryErrRequest).Add(float64(len(batch)))
			if firstErr == nil {
				firstErr = fmt.Errorf("GetMetricData in %s (account %s), %d queries: %s: %w", t.region, t.account, len(batch), describeErr(err), err)
			}
			continue
		}
		for q, pts := range got {
			if failed[q] {
				continue
			}
			slices.SortFunc(pts, func(a, b point) int { return a.t.Compare(b.t) })
			out[q] = pts
		}
	}
	if len(errs) > 0 {
		c.log.Debug("aws GetMetricData messages", "account", t.account, "region", t.region, "messages", strings.Join(errs, "; "))
	}
	return out, firstErr
}
