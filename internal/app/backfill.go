package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/pipeline/analytics"
	"github.com/novacron/novacron/pipeline/analytics/checkpoint"
)

// BackfillArgs are the flags of `novacron backfill`.
type BackfillArgs struct {
	// Start and End bound the history read (--start, --end). Required.
	Start, End time.Time
	// Selectors are PromQL series selectors (--selector, repeatable).
	// Default: one per analytics rule.
	Selectors []string
	// Step is the resolution read (--step). Default 1m.
	Step time.Duration
	// QueryURL is the Prometheus HTTP API to read (--query-url), without
	// /api/v1. Default: storage.remote.query for remote storage, else the
	// API at api.listen_address (the embedded store), with the API token.
	QueryURL string
	// Partitions is the samples topic's partition count (--partitions).
	// Default topics.partitions.
	Partitions int32
}

// RunBackfill warms the analytics models from stored history and saves
// them as the checkpoints the analytics stage loads when it takes a
// partition: run it before the processors start, or with them stopped (a
// running processor would overwrite the checkpoints of its partitions
// with its own state). Existing checkpoints are loaded first, so history
// only adds what they lack. Progress goes to stderr, a summary to stdout.
func RunBackfill(ctx context.Context, cfg *config.Config, args BackfillArgs, stdout, stderr io.Writer) error {
	acfg := cfg.Analytics
	acfg.MaxSampleAge = 0 // history is the point
	acfg.MaxClockSkew = 0
	if args.Partitions == 0 {
		args.Partitions = cfg.Topics.Partitions
	}
	q, err := backfillQuerier(cfg, args.QueryURL)
	if err != nil {
		return err
	}
	store, closeStore, err := backfillStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	proc, err := analytics.NewProcessor(acfg, nil, analytics.Source)
	if err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	parts := make([]int32, args.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	snaps, err := store.Load(ctx, parts)
	if err != nil {
		return fmt.Errorf("load existing checkpoints: %w", err)
	}
	for p, b := range snaps {
		if _, err := proc.Restore(p, b); err != nil {
			fmt.Fprintf(stderr, "backfill: checkpoint of partition %d unreadable, replacing it: %v\n", p, err)
			proc.Drop(p)
		}
	}
	fmt.Fprintf(stderr, "backfill: %d existing checkpoints loaded (%d series); reading %s to %s from %s\n",
		len(snaps), proc.SeriesCount(), args.Start.UTC().Format(time.RFC3339), args.End.UTC().Format(time.RFC3339), q.URL)
	stats, err := analytics.Backfill(ctx, q, proc, analytics.BackfillOptions{
		Start: args.Start, End: args.End, Step: args.Step, Selectors: args.Selectors,
		Partitions: args.Partitions, Progress: stderr,
	})
	if err != nil {
		return err
	}
	out := make(map[int32][]byte, len(parts))
	for _, p := range parts {
		if !proc.Has(p) {
			continue
		}
		b, err := proc.Snapshot(p)
		if err != nil {
			return fmt.Errorf("snapshot partition %d: %w", p, err)
		}
		out[p] = b
	}
	if err := store.Save(ctx, out); err != nil {
		return fmt.Errorf("save checkpoints: %w", err)
	}
	fmt.Fprintf(stdout, "backfill: %d samples of %d series in %d queries; %d partition checkpoints written (%d series)\n",
		stats.Samples, stats.Series, stats.Queries, len(out), proc.SeriesCount())
	return nil
}

func backfillQuerier(cfg *config.Config, queryURL string) (*analytics.HTTPQuerier, error) {
	if queryURL != "" {
		return &analytics.HTTPQuerier{URL: queryURL}, nil
	}
	if cfg.Storage.Type == config.StorageRemote {
		u := strings.TrimRight(cfg.Storage.Remote.Query.URL, "/")
		if t := cfg.Storage.Remote.Query.Tenant; t != "" {
			u += "/select/" + t + "/prometheus"
		}
		return &analytics.HTTPQuerier{URL: u}, nil
	}
	tok, err := api.ResolveToken(cfg.API.Token, cfg.API.TokenFile, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &analytics.HTTPQuerier{URL: "http://" + cfg.API.ListenAddress,
		Header: http.Header{"Authorization": {"Bearer " + tok.Token}}}, nil
}

// backfillStore opens the checkpoint store the processors use.
func backfillStore(ctx context.Context, cfg *config.Config) (checkpoint.Store, func(), error) {
	k := cfg.Analytics.Checkpoint
	if k.Store == analytics.CheckpointDir || cfg.Bus.Type == config.BusMemory {
		dir := k.Dir
		if dir == "" {
			dir = filepath.Join(cfg.DataDir, "analytics")
		}
		d, err := checkpoint.NewDir(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("analytics.checkpoint.dir: %w", err)
		}
		return d, func() {}, nil
	}
	b, err := kafkabus.New(cfg.Bus.Kafka, kafkabus.Settings{})
	if err != nil {
		return nil, nil, fmt.Errorf("bus.kafka: %w", err)
	}
	rf := max(cfg.Topics.ReplicationFactor, 1)
	if err := b.EnsureTopics(ctx, []novacron.TopicSpec{checkpoint.Spec(k.Topic, rf)}); err != nil {
		return nil, nil, errors.Join(fmt.Errorf("create checkpoint topic %q (analytics.checkpoint.topic): %w", k.Topic, err), b.Close())
	}
	return checkpoint.NewTopic(b, k.Topic, cfg.Analytics.Group), func() { _ = b.Close() }, nil
}

// ParseBackfillTime reads a --start or --end value: RFC 3339, Unix
// seconds, "now", or a duration before now ("168h", "30m").
func ParseBackfillTime(s string, now time.Time) (time.Time, error) {
	switch {
	case s == "now":
		return now, nil
	case s == "":
		return time.Time{}, errors.New("empty time")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f < 1e11 {
		return time.UnixMilli(int64(f * 1000)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339, Unix seconds, now, or a duration before now such as 168h", s)
}
