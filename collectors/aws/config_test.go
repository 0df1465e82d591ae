package aws

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	require.Equal(t, "aws", NewFactory().Type())
	require.Equal(t, NewDefaultConfig(), NewFactory().NewDefaultConfig())
}

func TestGoodConfigFile(t *testing.T) {
	b, err := os.ReadFile("testdata/aws.good.yaml")
	require.NoError(t, err)
	cfg := NewDefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(cfg))
	require.NoError(t, cfg.Validate())
	require.True(t, cfg.Enabled)
	require.Equal(t, "prod", cfg.Accounts[0].name())
	require.Equal(t, time.Minute, cfg.Period)
	require.Equal(t, RateLimit{Rate: 20, Burst: 20}, cfg.RateLimits["GetMetricData"])
	require.Equal(t, 0.0105, cfg.Pricing.GetMetricDataPer1000Metrics)
	require.Equal(t, 0.01, cfg.Pricing.ListMetricsPer1000Requests, "keys not given keep their defaults")
}

func TestValidateReportsEveryProblem(t *testing.T) {
	f := func(mod func(*Config), want ...string) {
		t.Helper()
		cfg := NewDefaultConfig()
		mod(cfg)
		err := cfg.Validate()
		require.Error(t, err)
		for _, w := range want {
			require.ErrorContains(t, err, w)
		}
	}
	f(func(c *Config) { c.Regions = nil }, "regions: must list at least one region")
	f(func(c *Config) { c.Regions = []string{"us-east-1", "Mars", "us-east-1"} }, `regions[1]: "Mars" is not a region name`, `regions[2]: duplicate "us-east-1"`)
	f(func(c *Config) {
		c.Accounts = []Account{{RoleARN: "role"}, {ExternalID: "x"}, {Name: "default"}, {Regions: []string{"x"}}}
	}, "accounts[0].role_arn:", "accounts[1].external_id: needs role_arn", `accounts[2].name: "default" is also the name of accounts[0]`, "accounts[3].regions[0]:")
	f(func(c *Config) { c.Endpoint = "localhost:4566" }, "endpoint:")
	f(func(c *Config) { c.CloudWatchProtocol = "soap" }, "cloudwatch_protocol:")
	f(func(c *Config) { c.Interval = time.Millisecond }, "interval: must be at least 1s")
	f(func(c *Config) { c.Period = 90 * time.Second }, "period: must be a positive multiple of 1m")
	f(func(c *Config) { c.Delay = -time.Second }, "delay:")
	f(func(c *Config) { c.Lookback = time.Minute }, "lookback: must be at least one period")
	f(func(c *Config) { c.DiscoveryInterval = time.Second }, "discovery_interval:")
	f(func(c *Config) { c.ListMetricsTTL = -1 }, "list_metrics_ttl:")
	f(func(c *Config) { c.RequestTimeout = 0 }, "request_timeout:")
	f(func(c *Config) { c.Filters = map[string][]string{"tag:env": nil} }, "filters.tag:env: must list at least one value")
	f(func(c *Config) { c.TagLabels = []string{"team", " ", "team"} }, "tag_labels[1]: must not be empty", `tag_labels[2]: duplicate "team"`)
	f(func(c *Config) { c.AgentNamespace = "" }, "agent_namespace:")
	f(func(c *Config) { c.MaxQueriesPerRequest = 501 }, "max_queries_per_request: must be between 1 and 500")
	f(func(c *Config) { c.RetryMode = "never" }, "retry_mode:")
	f(func(c *Config) { c.MaxAttempts = 0 }, "max_attempts:")
	f(func(c *Config) { c.MaxBackoff = 0 }, "max_backoff:")
	f(func(c *Config) {
		c.RateLimits = map[string]RateLimit{"PutMetricData": {Rate: 1}, "GetMetricData": {Rate: 0, Burst: -1}}
	}, `rate_limits.PutMetricData: unknown API`, "rate_limits.GetMetricData.rate:", "rate_limits.GetMetricData.burst:")
	f(func(c *Config) { c.Pricing.GetMetricDataPer1000Metrics = -1 }, "pricing.get_metric_data_per_1000_metrics:")
	// Several at once, all reported.
	f(func(c *Config) { c.Interval = 0; c.MaxAttempts = 0; c.RetryMode = "" }, "interval:", "max_attempts:", "retry_mode:")
}

func TestValidateDoesNotChangeConfig(t *testing.T) {
	cfg := &Config{}
	_ = cfg.Validate()
	require.Equal(t, &Config{}, cfg)
}

func TestTagLabelName(t *testing.T) {
	f := func(key, want string) {
		t.Helper()
		require.Equal(t, want, TagLabelName(key))
	}
	f("team", "tag_team")
	f("Cost-Center", "tag_cost_center")
	f("aws:autoscaling:groupName", "tag_aws_autoscaling_groupname")
	f("ÄÖ 1", "tag____1")
}

func FuzzConfig(f *testing.F) {
	b, err := os.ReadFile("testdata/aws.good.yaml")
	require.NoError(f, err)
	f.Add(string(b))
	f.Add("regions: [x]\nrate_limits: {A: {rate: -1}}\n")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		cfg := NewDefaultConfig()
		if yaml.Unmarshal([]byte(s), cfg) != nil {
			return
		}
		_ = cfg.Validate()
	})
}
