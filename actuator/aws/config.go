package aws

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/novacron/novacron/internal/confutil"
)

// Config configures the EC2 driver. YAML keys are snake_case.
type Config struct {
	// Regions are searched, in order, for the instance an action names.
	// Default ["us-east-1"]; at least one.
	Regions []string `yaml:"regions"`
	// Profile is the shared-config profile of the base credentials.
	// Default "" (AWS_PROFILE, else "default"); the standard chain.
	Profile string `yaml:"profile"`
	// RoleARN is an IAM role assumed for every call. Default "": the base
	// credentials act directly.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is passed to AssumeRole. Default ""; needs role_arn.
	ExternalID string `yaml:"external_id"`
	// Endpoint overrides the EC2 and STS base URL (a VPC endpoint,
	// LocalStack, moto). Default "".
	Endpoint string `yaml:"endpoint"`
	// Hibernate makes Stop hibernate instances that were launched with
	// hibernation configured; others are stopped. Default false.
	Hibernate bool `yaml:"hibernate"`
	// WaitTimeout bounds each wait for a state (running, stopped),
	// including the forced stop after a graceful one timed out. Default
	// 10m; must be positive.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
	// PollInterval is the waiters' shortest delay between two
	// DescribeInstances; they back off up to 120s. Default 5s; at least
	// 10ms.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxAttempts is the most attempts per API call (SDK adaptive
	// retries). Default 5; at least 1.
	MaxAttempts int `yaml:"max_attempts"`
}

// NewDefaultConfig returns the default configuration.
func NewDefaultConfig() *Config {
	return &Config{
		Regions:      []string{"us-east-1"},
		WaitTimeout:  10 * time.Minute,
		PollInterval: 5 * time.Second,
		MaxAttempts:  5,
	}
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$`)
	roleARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$`)
)

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
	for i, r := range c.Regions {
		k := fmt.Sprintf("regions[%d]", i)
		if !regionRE.MatchString(r) {
			add(k, "%q is not a region name (like eu-west-1)", r)
		} else if slices.Index(c.Regions, r) < i {
			add(k, "duplicate %q", r)
		}
	}
	if c.RoleARN != "" && !roleARNRE.MatchString(c.RoleARN) {
		add("role_arn", "%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)", c.RoleARN)
	}
	if c.ExternalID != "" && c.RoleARN == "" {
		add("external_id", "needs role_arn")
	}
	if c.Endpoint != "" {
		if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("endpoint", "%q is not an http(s) URL", c.Endpoint)
		}
	}
	if c.WaitTimeout <= 0 {
		add("wait_timeout", "must be positive, got %s", c.WaitTimeout)
	}
	if c.PollInterval < 10*time.Millisecond {
		add("poll_interval", "must be at least 10ms, got %s", c.PollInterval)
	}
	if c.MaxAttempts < 1 {
		add("max_attempts", "must be at least 1, got %d", c.MaxAttempts)
	}
	return errors.Join(errs...)
}
