package aws

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/novacron/novacron/internal/confutil"
)

// CloudWatch wire protocols the client can speak (cloudwatch_protocol).
const (
	// ProtocolCBOR is Smithy RPCv2 CBOR, the SDK's default and AWS's
	// preferred protocol for CloudWatch.
	ProtocolCBOR = "rpcv2_cbor"
	// ProtocolQuery is the older awsQuery protocol (form in, XML out),
	// which CloudWatch still serves and which emulators such as moto speak.
	ProtocolQuery = "query"
	// ProtocolJSON is awsJson 1.0, which CloudWatch serves as well.
	ProtocolJSON = "json"
)

// Retry modes (retry_mode).
const (
	// RetryAdaptive is the SDK's adaptive mode: standard retries plus a
	// client-side rate limit that slows down when AWS throttles.
	RetryAdaptive = "adaptive"
	// RetryStandard is the SDK's standard mode: exponential backoff with
	// jitter and a retry quota.
	RetryStandard = "standard"
)

// API names used as rate_limits keys and in self-metrics.
const (
	APIDescribeInstances     = "DescribeInstances"
	APIDescribeInstanceTypes = "DescribeInstanceTypes"
	APIGetMetricData         = "GetMetricData"
	APIListMetrics           = "ListMetrics"
	APIAssumeRole            = "AssumeRole"
)

// Config configures the AWS collector. YAML keys are snake_case.
type Config struct {
	// Enabled turns the collector on. Default false: the collector is
	// built only when a configuration asks for it.
	Enabled bool `yaml:"enabled"`
	// Regions are the regions read in every account that does not list its
	// own. Default ["us-east-1"]; at least one.
	Regions []string `yaml:"regions"`
	// Accounts are the AWS accounts read. Default: one account, reached
	// with the standard credential chain (environment, shared config,
	// web identity, ECS/EC2 roles) and no role to assume.
	Accounts []Account `yaml:"accounts"`
	// Profile is the shared-config profile the base credentials come from.
	// Default "" (AWS_PROFILE, else "default").
	Profile string `yaml:"profile"`
	// Endpoint overrides the base URL of every AWS API the collector calls
	// (a VPC endpoint, LocalStack, moto). Default "" (AWS's endpoints).
	Endpoint string `yaml:"endpoint"`
	// CloudWatchProtocol is the wire protocol spoken to CloudWatch:
	// "rpcv2_cbor" (default), "json" or "query" (for endpoints that do not
	// speak CBOR yet, such as moto).
	CloudWatchProtocol string `yaml:"cloudwatch_protocol"`

	// Interval is the time between two collection cycles. Default 1m; at
	// least 1s.
	Interval time.Duration `yaml:"interval"`
	// Period is the CloudWatch period (statistics granularity): 1m for
	// instances with detailed monitoring, 5m for basic monitoring. Default
	// 5m; a multiple of 1m.
	Period time.Duration `yaml:"period"`
	// Delay is how far behind real time the query window ends, because
	// CloudWatch publishes a period's statistics a few minutes after it
	// ends; a smaller delay reads incomplete buckets. Default 5m; 0 reads
	// up to now.
	Delay time.Duration `yaml:"delay"`
	// Lookback is how far back the first cycle reads, and the most a cycle
	// catches up after a pause (older periods are skipped and counted).
	// Default 15m; at least one period.
	Lookback time.Duration `yaml:"lookback"`
	// DiscoveryInterval is the time between two DescribeInstances sweeps;
	// each sweep also sends an inventory snapshot. Default 5m; at least
	// interval.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
	// ListMetricsTTL is how long the ListMetrics pages of a region are
	// reused before they are listed again. Default 1h; 0 lists every
	// cycle.
	ListMetricsTTL time.Duration `yaml:"list_metrics_ttl"`
	// RequestTimeout bounds one API call, retries included. Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`

	// Filters select the instances collected, as DescribeInstances
	// filters: tag:KEY=[values...] or any other EC2 filter name. Default
	// none (every instance).
	Filters map[string][]string `yaml:"filters"`
	// TagLabels is the allow-list of instance tags copied into inventory
	// (novacron.VM.Tags) and, as tag_<key> labels, onto novacron_vm_info.
	// Default none.
	TagLabels []string `yaml:"tag_labels"`
	// TenantTag is the tag whose value is the tenant label. Default
	// "tenant"; when an instance lacks it the account's tenant (its name)
	// is used.
	TenantTag string `yaml:"tenant_tag"`
	// NameTag is the tag whose value is the vm label. Default "Name"; when
	// absent the instance ID is used.
	NameTag string `yaml:"name_tag"`
	// AgentMetrics reads the CloudWatch agent's memory and disk metrics
	// (namespace agent_namespace) where instances publish them. Default
	// true.
	AgentMetrics bool `yaml:"agent_metrics"`
	// AgentNamespace is the CloudWatch agent's namespace. Default "CWAgent".
	AgentNamespace string `yaml:"agent_namespace"`

	// MaxQueriesPerRequest caps the metric queries of one GetMetricData
	// call. Default 500 (CloudWatch's maximum); 1 to 500.
	MaxQueriesPerRequest int `yaml:"max_queries_per_request"`
	// RetryMode is "adaptive" (default) or "standard".
	RetryMode string `yaml:"retry_mode"`
	// MaxAttempts is the most attempts per API call, the first included.
	// Default 5; at least 1.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxBackoff caps the SDK's wait between two attempts (exponential
	// backoff with jitter). Default 20s; must be positive.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// RateLimits are client-side token buckets per API, keyed by API name
	// (DescribeInstances, DescribeInstanceTypes, GetMetricData, ListMetrics,
	// AssumeRole), shared by every account and region of the collector.
	// Default DefaultRateLimits(); an API without an entry is not limited.
	RateLimits map[string]RateLimit `yaml:"rate_limits"`
	// Pricing is the price list the collector's cost estimate uses.
	// Default DefaultPricing() (us-east-1 list prices).
	Pricing Pricing `yaml:"pricing"`
}

// Account is one AWS account to read.
type Account struct {
	// Name identifies the account in logs and inventory sources and is the
	// tenant of instances without a tenant tag. Default: the account ID
	// from role_arn, else "default".
	Name string `yaml:"name"`
	// RoleARN is the IAM role assumed (STS AssumeRole) with the base
	// credentials. Default "": use the base credentials directly.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is passed to AssumeRole when the role's trust policy
	// requires one. Default "".
	ExternalID string `yaml:"external_id"`
	// Regions overrides the collector's regions for this account. Default
	// none (the collector's regions).
	Regions []string `yaml:"regions"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// Rate is the sustained requests per second. Must be positive.
	Rate float64 `yaml:"rate"`
	// Burst is the bucket size, the most requests sent at once. Default
	// (0) means 1.
	Burst int `yaml:"burst"`
}

// Pricing is the list price of the APIs the collector calls, in US
// dollars. The defaults are AWS's us-east-1 list prices for CloudWatch
// (pay per use, beyond the free tier, which the estimate ignores): EC2
// Describe* calls are free.
type Pricing struct {
	// GetMetricDataPer1000Metrics is the price of 1,000 metrics requested
	// through GetMetricData. Default 0.01.
	GetMetricDataPer1000Metrics float64 `yaml:"get_metric_data_per_1000_metrics"`
	// ListMetricsPer1000Requests is the price of 1,000 ListMetrics
	// requests. Default 0.01.
	ListMetricsPer1000Requests float64 `yaml:"list_metrics_per_1000_requests"`
	// EC2Per1000Requests is the price of 1,000 EC2 API requests. Default 0.
	EC2Per1000Requests float64 `yaml:"ec2_per_1000_requests"`
}

// DefaultRateLimits returns the default client-side limits, well below
// AWS's published throttling thresholds (EC2 Describe*: 100 rps bucket;
// GetMetricData: 50 TPS; ListMetrics: 25 TPS).
func DefaultRateLimits() map[string]RateLimit {
	return map[string]RateLimit{
		APIDescribeInstances:     {Rate: 10, Burst: 20},
		APIDescribeInstanceTypes: {Rate: 5, Burst: 10},
		APIGetMetricData:         {Rate: 10, Burst: 10},
		APIListMetrics:           {Rate: 5, Burst: 10},
		APIAssumeRole:            {Rate: 2, Burst: 5},
	}
}

// DefaultPricing returns us-east-1 list prices.
func DefaultPricing() Pricing {
	return Pricing{GetMetricDataPer1000Metrics: 0.01, ListMetricsPer1000Requests: 0.01}
}

// NewDefaultConfig returns the default configuration.
func NewDefaultConfig() *Config {
	return &Config{
		Regions:              []string{"us-east-1"},
		CloudWatchProtocol:   ProtocolCBOR,
		Interval:             time.Minute,
		Period:               5 * time.Minute,
		Delay:                5 * time.Minute,
		Lookback:             15 * time.Minute,
		DiscoveryInterval:    5 * time.Minute,
		ListMetricsTTL:       time.Hour,
		RequestTimeout:       30 * time.Second,
		TenantTag:            "tenant",
		NameTag:              "Name",
		AgentMetrics:         true,
		AgentNamespace:       "CWAgent",
		MaxQueriesPerRequest: 500,
		RetryMode:            RetryAdaptive,
		MaxAttempts:          5,
		MaxBackoff:           20 * time.Second,
		RateLimits:           DefaultRateLimits(),
		Pricing:              DefaultPricing(),
	}
}

// regionRE accepts the form of every AWS region name (us-east-1,
// us-gov-west-1, ap-southeast-5, eusc-de-east-1); whether the region
// exists is only known when it is called.
var regionRE = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)

var roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::([0-9]{12}):role/.+$`)

// Validate reports every problem with the configuration, worded with the
// YAML keys. It does not change the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if len(c.Regions) == 0 {
		add("regions", "must list at least one region")
	}
	errs = append(errs, checkRegions("regions", c.Regions)...)
	names := map[string]int{}
	for i, a := range c.Accounts {
		key := fmt.Sprintf("accounts[%d]", i)
		if a.RoleARN != "" && !roleARNRE.MatchString(a.RoleARN) {
			add(key+".role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", a.RoleARN)
		}
		if a.ExternalID != "" && a.RoleARN == "" {
			add(key+".external_id", "needs role_arn")
		}
		errs = append(errs, checkRegions(key+".regions", a.Regions)...)
		n := a.name()
		if j, dup := names[n]; dup {
			add(key+".name", "%q is also the name of accounts[%d]; give each account its own name", n, j)
		} else {
			names[n] = i
		}
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("endpoint", "%q is not an http(s) URL", c.Endpoint)
		}
	}
	if !slices.Contains([]string{ProtocolCBOR, ProtocolJSON, ProtocolQuery}, c.CloudWatchProtocol) {
		add("cloudwatch_protocol", "must be %q, %q or %q, got %q", ProtocolCBOR, ProtocolJSON, ProtocolQuery, c.CloudWatchProtocol)
	}
	if c.Interval < time.Second {
		add("interval", "must be at least 1s, got %s", c.Interval)
	}
	if c.Period < time.Minute || c.Period%time.Minute != 0 {
		add("period", "must be a positive multiple of 1m, got %s", c.Period)
	}
	if c.Delay < 0 {
		add("delay", "must not be negative, got %s", c.Delay)
	}
	if c.Lookback < c.Period || c.Lookback <= 0 {
		add("lookback", "must be at least one period (%s), got %s", c.Period, c.Lookback)
	}
	if c.DiscoveryInterval < c.Interval {
		add("discovery_interval", "must be at least interval (%s), got %s", c.Interval, c.DiscoveryInterval)
	}
	if c.ListMetricsTTL < 0 {
		add("list_metrics_ttl", "must not be negative, got %s", c.ListMetricsTTL)
	}
	if c.RequestTimeout <= 0 {
		add("request_timeout", "must be positive, got %s", c.RequestTimeout)
	}
	for k, vs := range c.Filters {
		if strings.TrimSpace(k) == "" {
			add("filters", "filter names must not be empty")
		}
		if len(vs) == 0 {
			add("filters."+k, "must list at least one value")
		}
	}
	for i, t := range c.TagLabels {
		if strings.TrimSpace(t) == "" {
			add(fmt.Sprintf("tag_labels[%d]", i), "must not be empty")
		} else if slices.Index(c.TagLabels, t) < i {
			add(fmt.Sprintf("tag_labels[%d]", i), "duplicate %q", t)
		}
	}
	if c.AgentMetrics && strings.TrimSpace(c.AgentNamespace) == "" {
		add("agent_namespace", "must not be empty when agent_metrics is true")
	}
	if c.MaxQueriesPerRequest < 1 || c.MaxQueriesPerRequest > 500 {
		add("max_queries_per_request", "must be between 1 and 500, got %d", c.MaxQueriesPerRequest)
	}
	if c.RetryMode != RetryAdaptive && c.RetryMode != RetryStandard {
		add("retry_mode", "must be %q or %q, got %q", RetryAdaptive, RetryStandard, c.RetryMode)
	}
	if c.MaxAttempts < 1 {
		add("max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	if c.MaxBackoff <= 0 {
		add("max_backoff", "must be positive, got %s", c.MaxBackoff)
	}
	known := []string{APIDescribeInstances, APIDescribeInstanceTypes, APIGetMetricData, APIListMetrics, APIAssumeRole}
	for api, rl := range c.RateLimits {
		key := "rate_limits." + api
		if !slices.Contains(known, api) {
			add(key, "unknown API %q, want one of %s", api, strings.Join(known, ", "))
		}
		if math.IsNaN(rl.Rate) || math.IsInf(rl.Rate, 0) || rl.Rate <= 0 {
			add(key+".rate", "must be a positive number of requests per second, got %v", rl.Rate)
		}
		if rl.Burst < 0 {
			add(key+".burst", "must not be negative, got %d", rl.Burst)
		}
	}
	for _, p := range []struct {
		key string
		v   float64
	}{
		{"pricing.get_metric_data_per_1000_metrics", c.Pricing.GetMetricDataPer1000Metrics},
		{"pricing.list_metrics_per_1000_requests", c.Pricing.ListMetricsPer1000Requests},
		{"pricing.ec2_per_1000_requests", c.Pricing.EC2Per1000Requests},
	} {
		if math.IsNaN(p.v) || math.IsInf(p.v, 0) || p.v < 0 {
			add(p.key, "must be a non-negative price, got %v", p.v)
		}
	}
	return errors.Join(errs...)
}

func checkRegions(key string, regions []string) []error {
	var errs []error
	for i, r := range regions {
		k := fmt.Sprintf("%s[%d]", key, i)
		switch {
		case !regionRE.MatchString(r):
			errs = append(errs, confutil.Errorf(k, "%q is not a region name (like eu-west-1)", r))
		case slices.Index(regions, r) < i:
			errs = append(errs, confutil.Errorf(k, "duplicate %q", r))
		}
	}
	return errs
}

// name returns the account's name, defaulted.
func (a Account) name() string {
	if a.Name != "" {
		return a.Name
	}
	if m := roleARNRE.FindStringSubmatch(a.RoleARN); m != nil {
		return m[1]
	}
	return "default"
}

// accounts returns the configured accounts, or the one default account.
func (c *Config) accounts() []Account {
	if len(c.Accounts) == 0 {
		return []Account{{}}
	}
	return c.Accounts
}

// TagLabelName returns the label name an allow-listed tag key becomes on
// novacron_vm_info: "tag_" followed by the key lower-cased, with every
// character outside [a-z0-9_] replaced by "_" ("Cost-Center" →
// "tag_cost_center").
func TagLabelName(key string) string {
	var b strings.Builder
	b.WriteString("tag_")
	for _, r := range strings.ToLower(strings.TrimSpace(key)) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
