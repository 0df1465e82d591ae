// Command awscost measures what the AWS collector asks of AWS for a fleet:
// API calls and metrics requested per hour, and their estimated price,
// at 1-minute and 5-minute resolution. It runs the real collector, through
// the real SDK, against moto (started here unless -endpoint names one)
// holding the fleet, on a simulated clock, and writes a Markdown table.
//
//	go run ./benchmarks/aws/cmd/awscost -instances 1000 -out benchmarks/aws/results.md
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	novacron "github.com/novacron/novacron"
	awscollector "github.com/novacron/novacron/collectors/aws"
	"github.com/novacron/novacron/internal/testserver"
)

func main() {
	instances := flag.Int("instances", 1000, "instances in the fleet")
	ebs := flag.Bool("ebs", true, "give every instance the four EBS metrics of a Nitro instance (listed, so queried)")
	endpoint := flag.String("endpoint", "", "a running moto_server (default: start one)")
	out := flag.String("out", "", "write the Markdown results here (default stdout)")
	flag.Parse()
	if err := run(*instances, *ebs, *endpoint, *out); err != nil {
		log.Fatal(err)
	}
}

type result struct {
	resolution                          time.Duration
	queriesPerCycle                     int
	gmdCalls, metrics, listCalls, descr float64
	cost                                float64
}

func run(n int, ebs bool, endpoint, outPath string) error {
	if endpoint == "" {
		m, err := testserver.StartMoto()
		if err != nil {
			return err
		}
		defer m.Stop()
		endpoint = m.URL()
	}
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKIDBENCH", "secret", "")
	acfg := aws.Config{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(endpoint)}
	if err := seed(ctx, acfg, n, ebs); err != nil {
		return err
	}
	var results []result
	for _, res := range []time.Duration{time.Minute, 5 * time.Minute} {
		r, err := measure(ctx, endpoint, creds, res)
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	w := io.Writer(os.Stdout)
	if outPath != "" {
		f, err := os.Create(outPath)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	return report(w, n, ebs, results)
}

// seed runs n instances in moto and, with ebs, lists the four EBS metrics
// of each (one datapoint each, two hours back, so ListMetrics sees them).
func seed(ctx context.Context, acfg aws.Config, n int, ebs bool) error {
	e := ec2.NewFromConfig(acfg)
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(imgs.Images) == 0 {
		return fmt.Errorf("find an AMI: %v", err)
	}
	var ids []string
	for left := n; left > 0; {
		k := min(left, 500)
		out, err := e.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeM5Large, MinCount: aws.Int32(int32(k)), MaxCount: aws.Int32(int32(k))})
		if err != nil {
			return fmt.Errorf("run instances: %w", err)
		}
		for _, i := range out.Instances {
			ids = append(ids, *i.InstanceId)
		}
		left -= k
	}
	if !ebs {
		return nil
	}
	// moto speaks no CBOR: awsJson 1.0, which CloudWatch serves as well.
	cw := cloudwatch.NewFromConfig(acfg, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(smithy.NewServiceSchema(
			smithy.NewSchema(smithy.ShapeID{Namespace: "com.amazonaws.cloudwatch", Name: "GraniteServiceVersion20100801"}, smithy.ShapeTypeService, 0),
			"2010-08-01"))
	})
	var data []cwtypes.MetricDatum
	at := time.Now().Add(-2 * time.Hour)
	for _, id := range ids {
		for _, m := range []string{"EBSReadBytes", "EBSWriteBytes", "EBSReadOps", "EBSWriteOps"} {
			data = append(data, cwtypes.MetricDatum{MetricName: aws.String(m), Value: aws.Float64(1), Timestamp: aws.Time(at),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(id)}}})
		}
	}
	for lo := 0; lo < len(data); lo += 1000 {
		if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EC2"), MetricData: data[lo:min(lo+1000, len(data))]}); err != nil {
			return fmt.Errorf("put EBS metrics: %w", err)
		}
	}
	return nil
}

type nopSink struct{}

func (nopSink) ConsumeSeries(context.Context, []novacron.Series) error     { return nil }
func (nopSink) ConsumeInventory(context.Context, novacron.Inventory) error { return nil }
func (nopSink) ConsumeEvents(context.Context, []novacron.Event) error      { return nil }

// measure runs the collector for one simulated hour at the resolution
// (period = interval = res), after a warm-up cycle, and returns the
// hour's API use from the collector's own metrics.
func measure(ctx context.Context, endpoint string, creds aws.CredentialsProvider, res time.Duration) (result, error) {
	cfg := awscollector.NewDefaultConfig()
	cfg.Endpoint = endpoint
	cfg.CloudWatchProtocol = awscollector.ProtocolJSON // moto speaks no CBOR
	cfg.Period, cfg.Interval = res, res
	cfg.Delay = 0
	cfg.DiscoveryInterval = 5 * time.Minute
	cfg.RateLimits = nil
	reg := prometheus.NewRegistry()
	t0 := time.Now().Truncate(time.Hour)
	now := t0
	c, err := awscollector.New(*cfg, awscollector.Settings{Registerer: reg, Credentials: creds, Now: func() time.Time { return now }}, nopSink{})
	if err != nil {
		return result{}, err
	}
	c.Collect(ctx)
	before, err := counters(reg)
	if err != nil {
		return result{}, err
	}
	for now = t0.Add(res); !now.After(t0.Add(time.Hour)); now = now.Add(res) {
		c.Collect(ctx)
	}
	after, err := counters(reg)
	if err != nil {
		return result{}, err
	}
	d := func(k string) float64 { return after[k] - before[k] }
	r := result{
		resolution: res,
		gmdCalls:   d(`novacron_aws_api_requests_total{api="GetMetricData",result="ok"}`),
		metrics:    d(`novacron_aws_metrics_requested_total{api="GetMetricData"}`),
		listCalls:  d(`novacron_aws_api_requests_total{api="ListMetrics",result="ok"}`),
		descr:      d(`novacron_aws_api_requests_total{api="DescribeInstances",result="ok"}`),
	}
	for k, v := range after {
		if strings.HasPrefix(k, "novacron_aws_api_estimated_cost_dollars_total") {
			r.cost += v - before[k]
		}
	}
	cycles := float64(time.Hour / res)
	r.queriesPerCycle = int(math.Round(r.metrics / cycles))
	for k, v := range after {
		if strings.Contains(k, `result="throttled"`) || strings.Contains(k, `result="error"`) {
			if v-before[k] > 0 {
				return r, fmt.Errorf("%s: %v failed requests", k, v-before[k])
			}
		}
	}
	return r, nil
}

// counters flattens the registry's counters to "name{l="v",...}" → value.
func counters(g prometheus.Gatherer) (map[string]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out, nil
}

func report(w io.Writer, n int, ebs bool, rs []result) error {
	p := awscollector.DefaultPricing()
	fmt.Fprintf(w, "# AWS collector: API calls and cost per hour\n\n")
	fmt.Fprintf(w, "Generated by `go run ./benchmarks/aws/cmd/awscost -instances %d -out benchmarks/aws/results.md`: the real collector, through the real SDK, against moto holding %d running instances", n, n)
	if ebs {
		fmt.Fprintf(w, " with the four EBS metrics of a Nitro instance each")
	}
	fmt.Fprintf(w, ", for one simulated hour after a warm-up cycle. period = interval = resolution, discovery_interval 5m, list_metrics_ttl 1h; no instance publishes agent metrics (the agent namespace is still listed).\n\n")
	fmt.Fprintf(w, "Prices (configurable under `pricing`): GetMetricData $%.2f per 1,000 metrics requested, ListMetrics $%.2f per 1,000 requests, EC2 Describe* free; the CloudWatch free tier is ignored.\n\n", p.GetMetricDataPer1000Metrics, p.ListMetricsPer1000Requests)
	fmt.Fprintf(w, "| resolution | metric queries per cycle | GetMetricData calls/h | target (⌈queries/500⌉ × cycles) | metrics requested/h | ListMetrics calls/h | DescribeInstances calls/h | estimated $/h | estimated $/30 days |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rs {
		cycles := float64(time.Hour / r.resolution)
		target := math.Ceil(float64(r.queriesPerCycle)/500) * cycles
		fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %.0f |\n",
			r.resolution, r.queriesPerCycle, r.gmdCalls, target, r.metrics, r.listCalls, r.descr, r.cost, r.cost*24*30)
	}
	fmt.Fprintf(w, "\nThe bill is set by the metrics requested (instances × metrics per instance × cycles per hour), not by the calls: batching 500 queries per call meets the target of one GetMetricData call per 500 metric queries per interval; reading at 5-minute resolution costs a fifth of 1-minute resolution.\n")
	return nil
}
