package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"golang.org/x/time/rate"
)

// cloudWatchQueryService is what the awsQuery protocol needs to know of
// CloudWatch: its API version, sent as Version=2010-08-01.
var cloudWatchQueryService = smithy.NewServiceSchema(nil, "2010-08-01")

// cloudWatchJSONService is what the awsJson 1.0 protocol needs to know of
// CloudWatch: the service shape name, the X-Amz-Target prefix.
var cloudWatchJSONService = smithy.NewServiceSchema(
	smithy.NewSchema(smithy.ShapeID{Namespace: "com.amazonaws.cloudwatch", Name: "GraniteServiceVersion20100801"}, smithy.ShapeTypeService, 0),
	"2010-08-01")

// apiGuard is the per-attempt middleware shared by every client of one
// collector: it waits for the API's token bucket, then counts the attempt
// and its result (ok, throttled, error) and its cost.
type apiGuard struct {
	limiters map[string]*rate.Limiter
	m        *metrics
	pricing  Pricing
}

func newAPIGuard(cfg *Config, m *metrics) *apiGuard {
	g := &apiGuard{limiters: map[string]*rate.Limiter{}, m: m, pricing: cfg.Pricing}
	for api, rl := range cfg.RateLimits {
		burst := rl.Burst
		if burst < 1 {
			burst = 1
		}
		g.limiters[api] = rate.NewLimiter(rate.Limit(rl.Rate), burst)
	}
	return g
}

var throttles = retry.IsErrorThrottles(retry.DefaultThrottles)

// IsThrottle reports whether err is AWS telling the caller to slow down
// (Throttling, RequestLimitExceeded, TooManyRequestsException, HTTP 429...).
func IsThrottle(err error) bool {
	return err != nil && throttles.IsErrorThrottle(err) == aws.TrueTernary
}

// add installs the guard on a client's stack, after the retry middleware,
// so every attempt (retries included) takes a token and is counted.
func (g *apiGuard) add(stack *middleware.Stack) error {
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("novacron/apiGuard",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			api := middleware.GetOperationName(ctx)
			if l := g.limiters[api]; l != nil {
				if err := l.Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("%s rate limit: %w", api, err)
				}
			}
			began := time.Now()
			out, md, err := next.HandleFinalize(ctx, in)
			g.m.requestDuration.WithLabelValues(api).Observe(time.Since(began).Seconds())
			switch {
			case err == nil:
				g.m.requests.WithLabelValues(api, resultOK).Inc()
				g.charge(api)
			case IsThrottle(err):
				g.m.requests.WithLabelValues(api, resultThrottled).Inc()
			default:
				g.m.requests.WithLabelValues(api, resultError).Inc()
			}
			return out, md, err
		}), "Retry", middleware.After)
}

// charge adds the per-request price of api. GetMetricData is priced per
// metric requested and charged by the caller, which knows the count.
func (g *apiGuard) charge(api string) {
	switch api {
	case APIListMetrics:
		g.m.cost.WithLabelValues(api).Add(g.pricing.ListMetricsPer1000Requests / 1000)
	case APIDescribeInstances, APIDescribeInstanceTypes:
		g.m.cost.WithLabelValues(api).Add(g.pricing.EC2Per1000Requests / 1000)
	}
}

// chargeMetrics counts n metrics requested through GetMetricData.
func (g *apiGuard) chargeMetrics(n int) {
	g.m.metricsRequested.WithLabelValues(APIGetMetricData).Add(float64(n))
	g.m.cost.WithLabelValues(APIGetMetricData).Add(float64(n) * g.pricing.GetMetricDataPer1000Metrics / 1000)
}

// target is one account in one region, with its clients.
type target struct {
	account string
	region  string
	ec2     *ec2.Client
	cw      *cloudwatch.Client
}

// loadBase loads the base AWS configuration: the standard credential chain
// (or set.Credentials), the retryer and the guard.
func loadBase(ctx context.Context, cfg *Config, set Settings, guard *apiGuard) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Regions[0]),
		awsconfig.WithRetryer(func() aws.Retryer { return newRetryer(cfg) }),
		awsconfig.WithAPIOptions([]func(*middleware.Stack) error{guard.add}),
	}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if set.Credentials != nil {
		opts = append(opts, awsconfig.WithCredentialsProvider(set.Credentials))
	}
	if set.HTTPClient != nil {
		opts = append(opts, awsconfig.WithHTTPClient(set.HTTPClient))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration (profile %q): %w", cfg.Profile, err)
	}
	if cfg.Endpoint != "" {
		base.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return base, nil
}

func newRetryer(cfg *Config) aws.Retryer {
	std := func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.MaxBackoff = cfg.MaxBackoff
	}
	if cfg.RetryMode == RetryStandard {
		return retry.NewStandard(std)
	}
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, std)
	})
}

// newTargets builds the clients of every account and region. Assumed
// roles are fetched lazily, on the first call, and refreshed before they
// expire.
func newTargets(base aws.Config, cfg *Config) []*target {
	var out []*target
	for _, a := range cfg.accounts() {
		acfg := base.Copy()
		if a.RoleARN != "" {
			stsClient := sts.NewFromConfig(base)
			prov := stscreds.NewAssumeRoleProvider(stsClient, a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "novacron-collector"
				if a.ExternalID != "" {
					o.ExternalID = aws.String(a.ExternalID)
				}
			})
			acfg.Credentials = aws.NewCredentialsCache(prov)
		}
		regions := a.Regions
		if len(regions) == 0 {
			regions = cfg.Regions
		}
		for _, r := range regions {
			out = append(out, &target{
				account: a.name(),
				region:  r,
				ec2:     ec2.NewFromConfig(acfg, func(o *ec2.Options) { o.Region = r }),
				cw: cloudwatch.NewFromConfig(acfg, func(o *cloudwatch.Options) {
					o.Region = r
					switch cfg.CloudWatchProtocol {
					case ProtocolQuery:
						o.Protocol = awsquery.New(cloudWatchQueryService)
					case ProtocolJSON:
						o.Protocol = awsjson.New10(cloudWatchJSONService)
					}
				}),
			})
		}
	}
	return out
}

// describeErr words an AWS error for logs: the API error code and message
// when AWS sent one.
func describeErr(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}
