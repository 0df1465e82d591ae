// Package aws is the Amazon EC2 collector, at the start of the pipeline:
// it discovers EC2 instances (DescribeInstances) in one or more accounts
// and regions, reads their CloudWatch metrics (GetMetricData, up to 500
// queries a call) and delivers them, mapped into the metric catalogue
// (docs/metrics.md) with provider="aws", to a novacron.Sink together with
// inventory snapshots.
//
// Credentials come from the standard AWS chain; a role can be assumed per
// account. Every API has a client-side token bucket on top of the SDK's
// adaptive retries; throttling is counted, never fatal. The collector
// counts its requests and the metrics it asks for, and estimates what
// they cost from a configurable price list (novacron_aws_* metrics), so
// users see what collection costs them. See docs/providers/aws.md.
package aws
