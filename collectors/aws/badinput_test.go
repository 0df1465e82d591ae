package aws

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/encoding/cbor"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/testserver"
)

// faultProxy forwards to moto, except requests fault answers itself: it
// returns the status and body to send, or ok=false to forward.
func faultProxy(t *testing.T, m *testserver.Moto, fault func(r *http.Request, body []byte) (status int, resp string, ok bool)) string {
	t.Helper()
	u, err := url.Parse(m.URL())
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if status, resp, ok := fault(r, body); ok {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, resp)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func formAction(body []byte) url.Values {
	v, _ := url.ParseQuery(string(body))
	return v
}

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestUnknownRegionKeepsOthersFlowing(t *testing.T) {
	e := newMotoEnv(t)
	e.runInstances(t, 2, ec2types.InstanceTypeT3Micro, nil)
	cfg := e.config()
	cfg.Regions = []string{"us-east-1", "zz-nowhere-9"}
	logs := &logBuffer{}
	c, sink := newTestCollector(t, cfg, Settings{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	c.Collect(context.Background())
	invs := sink.Inventories()
	require.Len(t, invs, 1, "only the known region answers")
	require.Equal(t, "aws/default/us-east-1", invs[0].Source)
	require.Len(t, invs[0].VMs, 2)
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.errCollect))
	require.Contains(t, logs.String(), "DescribeInstances in zz-nowhere-9 (account default)")
}

func TestThrottlingStormIsCountedAndSurvived(t *testing.T) {
	e := newMotoEnv(t)
	e.runInstances(t, 1, ec2types.InstanceTypeT3Micro, nil)
	var describes atomic.Int32
	endpoint := faultProxy(t, e.moto, func(r *http.Request, body []byte) (int, string, bool) {
		if formAction(body).Get("Action") == "DescribeInstances" && describes.Add(1) <= 6 {
			return http.StatusServiceUnavailable, `<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r1</RequestID></Response>`, true
		}
		return 0, "", false
	})
	cfg := e.config()
	cfg.Endpoint = endpoint
	cfg.MaxBackoff = 10 * time.Millisecond
	c, sink := newTestCollector(t, cfg, Settings{})
	for range 3 {
		c.Collect(context.Background())
		require.Empty(t, sink.Inventories(), "every attempt throttled")
	}
	require.Equal(t, 6.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIDescribeInstances, resultThrottled)), "two attempts per cycle")
	require.Equal(t, 3.0, testutil.ToFloat64(c.m.errCollect))
	c.Collect(context.Background())
	require.Len(t, sink.Inventories(), 1, "the storm is over")
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIDescribeInstances, resultOK)))
}

func TestRateLimitSpacesRequests(t *testing.T) {
	e := newMotoEnv(t)
	cfg := e.config()
	cfg.RateLimits = map[string]RateLimit{APIDescribeInstances: {Rate: 5, Burst: 1}}
	cfg.DiscoveryInterval = cfg.Interval
	clk := &clock{t: time.Now()}
	c, _ := newTestCollector(t, cfg, Settings{Now: clk.Now})
	began := time.Now()
	for i := range 3 {
		clk.Set(clk.Now().Add(time.Duration(i+1) * cfg.Interval))
		c.Collect(context.Background())
	}
	require.Equal(t, 3.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIDescribeInstances, resultOK)))
	require.GreaterOrEqual(t, time.Since(began), 400*time.Millisecond, "5 per second, one at a time")
}

// TestAssumeRolePerAccount reads two accounts through AssumeRole: moto
// keeps each role's account apart, and the account whose role is refused
// fails alone, with the refusal in the log.
func TestAssumeRolePerAccount(t *testing.T) {
	e := newMotoEnv(t)
	e.runInstances(t, 1, ec2types.InstanceTypeT3Micro, nil) // base account: not read
	ctx := context.Background()
	base := aws.Config{Region: testserver.MotoRegion, Credentials: testCreds, BaseEndpoint: aws.String(e.moto.URL())}
	role, err := sts.NewFromConfig(base).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String("arn:aws:iam::111111111111:role/novacron"), RoleSessionName: aws.String("setup"),
	})
	require.NoError(t, err)
	acct := base.Copy()
	acct.Credentials = credentials.NewStaticCredentialsProvider(*role.Credentials.AccessKeyId, *role.Credentials.SecretAccessKey, *role.Credentials.SessionToken)
	out, err := ec2.NewFromConfig(acct).RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(e.imageID(t)), InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
	})
	require.NoError(t, err)

	endpoint := faultProxy(t, e.moto, func(r *http.Request, body []byte) (int, string, bool) {
		f := formAction(body)
		if f.Get("Action") == "AssumeRole" && strings.Contains(f.Get("RoleArn"), "222222222222") {
			return http.StatusForbidden, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>r2</RequestId></ErrorResponse>`, true
		}
		return 0, "", false
	})
	cfg := e.config()
	cfg.Endpoint = endpoint
	cfg.Accounts = []Account{
		{Name: "prod", RoleARN: "arn:aws:iam::111111111111:role/novacron"},
		{Name: "denied", RoleARN: "arn:aws:iam::222222222222:role/novacron"},
	}
	logs := &logBuffer{}
	c, sink := newTestCollector(t, cfg, Settings{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	c.Collect(ctx)
	invs := sink.Inventories()
	require.Len(t, invs, 1)
	require.Equal(t, "aws/prod/us-east-1", invs[0].Source)
	require.Len(t, invs[0].VMs, 2, "only the role's account")
	for _, vm := range invs[0].VMs {
		require.True(t, vm.ID == *out.Instances[0].InstanceId || vm.ID == *out.Instances[1].InstanceId)
		require.Equal(t, "prod", vm.Tenant, "no tenant tag: the account's name")
	}
	require.Contains(t, logs.String(), "AccessDenied")
	require.Contains(t, logs.String(), "account=denied")
}

func TestInvalidCredentials(t *testing.T) {
	e := newMotoEnv(t)
	endpoint := faultProxy(t, e.moto, func(r *http.Request, body []byte) (int, string, bool) {
		if strings.Contains(r.Header.Get("Authorization"), "Credential=AKIDBAD/") {
			return http.StatusUnauthorized, `<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>r3</RequestID></Response>`, true
		}
		return 0, "", false
	})
	cfg := e.config()
	cfg.Endpoint = endpoint
	logs := &logBuffer{}
	c, sink := newTestCollector(t, cfg, Settings{
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDBAD", "wrong", ""),
	})
	c.Collect(context.Background())
	require.Empty(t, sink.Inventories())
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.errCollect))
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.requests.WithLabelValues(APIDescribeInstances, resultError)), "not retried")
	require.Contains(t, logs.String(), "AuthFailure: AWS was not able to validate the provided access credentials")
}

// TestTerminatedBetweenListingAndQuerying terminates an instance after
// discovery: the next cycle still reads the others, and the next
// discovery drops it and its series.
func TestTerminatedBetweenListingAndQuerying(t *testing.T) {
	e := newMotoEnv(t)
	ids := e.runInstances(t, 2, ec2types.InstanceTypeT3Micro, nil)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	cfg := e.config()
	cfg.Delay = 0
	clk := &clock{t: now}
	c, sink := newTestCollector(t, cfg, Settings{Now: clk.Now})
	c.Collect(context.Background())
	require.Len(t, sink.Inventories()[0].VMs, 2)

	_, err := e.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[1:]})
	require.NoError(t, err)
	for _, id := range ids {
		e.put(t, NamespaceEC2, "CPUUtilization", map[string]string{"InstanceId": id}, cwtypes.StandardUnitPercent, []point{{now, 10}})
	}
	clk.Set(now.Add(cfg.Period))
	c.Collect(context.Background())
	_, s := find(sink, catalog.VMCPUUsageRatio, ids[0])
	require.Equal(t, []novacron.Sample{{T: now.UnixMilli(), V: 0.1}}, s)
	require.Zero(t, testutil.ToFloat64(c.m.errCollect))

	clk.Set(now.Add(cfg.DiscoveryInterval + cfg.Period))
	c.Collect(context.Background())
	invs := sink.Inventories()
	last := invs[len(invs)-1]
	require.Len(t, last.VMs, 1)
	require.Equal(t, ids[0], last.VMs[0].ID)
	batches := sink.Batches()
	for _, s := range batches[len(batches)-1] {
		require.NotEqual(t, ids[1], s.Labels.Get(catalog.LabelVMID), "no series for the terminated instance")
	}
	for k := range c.states[0].last {
		require.NotEqual(t, ids[1], instanceOfKey(k), "its state is forgotten")
	}
}

// TestPartialGetMetricDataResults answers GetMetricData in CloudWatch's
// own Smithy RPCv2 CBOR protocol (the SDK's default, which moto does not
// speak) from an httptest server, forwarding EC2 to moto: one query comes
// back PartialData and continues on the NextToken page, another fails with
// InternalError. The first is assembled across pages, the second counted,
// the rest delivered.
func TestPartialGetMetricDataResults(t *testing.T) {
	e := newMotoEnv(t)
	ids := e.runInstances(t, 2, ec2types.InstanceTypeT3Micro, nil)
	slices.Sort(ids) // the collector plans queries in instance ID order: q0-q5, q6-q11
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	p0 := now.Add(-15 * time.Minute)
	ts := func(ts ...time.Time) cbor.List {
		var l cbor.List
		for _, t := range ts {
			l = append(l, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.Unix()))})
		}
		return l
	}
	var gmd atomic.Int32
	u, _ := url.Parse(e.moto.URL())
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Smithy-Protocol") != "rpc-v2-cbor" {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := cbor.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var resp cbor.Map
		switch {
		case strings.HasSuffix(r.URL.Path, "/operation/ListMetrics"):
			resp = cbor.Map{"Metrics": cbor.List{}}
		case strings.HasSuffix(r.URL.Path, "/operation/GetMetricData"):
			gmd.Add(1)
			qs := req.(cbor.Map)["MetricDataQueries"].(cbor.List)
			if len(qs) != 12 {
				http.Error(w, "want 12 queries", http.StatusBadRequest)
				return
			}
			if _, next := req.(cbor.Map)["NextToken"]; !next {
				resp = cbor.Map{
					"MetricDataResults": cbor.List{
						cbor.Map{"Id": cbor.String("q0"), "StatusCode": cbor.String("PartialData"), "Timestamps": ts(p0, p0.Add(5*time.Minute)), "Values": cbor.List{cbor.Float64(10), cbor.Float64(20)}},
						cbor.Map{"Id": cbor.String("q6"), "StatusCode": cbor.String("InternalError"), "Timestamps": cbor.List{}, "Values": cbor.List{}},
					},
					"Messages":  cbor.List{cbor.Map{"Code": cbor.String("MaxDatapointsExceeded"), "Value": cbor.String("more on the next page")}},
					"NextToken": cbor.String("page2"),
				}
			} else {
				resp = cbor.Map{"MetricDataResults": cbor.List{
					cbor.Map{"Id": cbor.String("q0"), "StatusCode": cbor.String("Complete"), "Timestamps": ts(p0.Add(10 * time.Minute)), "Values": cbor.List{cbor.Float64(30)}},
				}}
			}
		default:
			http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
			return
		}
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		_, _ = w.Write(cbor.Encode(resp))
	}))
	t.Cleanup(srv.Close)

	cfg := e.config()
	cfg.Endpoint = srv.URL
	cfg.CloudWatchProtocol = ProtocolCBOR
	cfg.Delay = 0
	c, sink := newTestCollector(t, cfg, Settings{Now: func() time.Time { return now }})
	c.Collect(context.Background())
	require.Equal(t, int32(2), gmd.Load(), "one call, two pages")
	_, s := find(sink, catalog.VMCPUUsageRatio, ids[0])
	require.Equal(t, []novacron.Sample{{T: p0.UnixMilli(), V: 0.1}, {T: p0.Add(5 * time.Minute).UnixMilli(), V: 0.2}, {T: p0.Add(10 * time.Minute).UnixMilli(), V: 0.3}}, s)
	_, s = find(sink, catalog.VMCPUUsageRatio, ids[1])
	require.Empty(t, s)
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.queryErrors.WithLabelValues(queryErrStatus)))
	require.Equal(t, 24.0, testutil.ToFloat64(c.m.metricsRequested.WithLabelValues(APIGetMetricData)), "12 metrics on each of two pages")
	_, s = find(sink, catalog.VMUp, ids[1])
	require.Len(t, s, 1, "the failed query does not stop the instance's state series")
}
