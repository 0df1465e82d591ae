package rules_test

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/alerting/rules"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/testserver"
)

// TestShippedRules parses every shipped rule file the way the rule
// manager does and checks that every metric an expression reads is in the
// catalogue and in docs/metrics.md, or is recorded by the set itself.
func TestShippedRules(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "docs", "metrics.md"))
	require.NoError(t, err)
	p := parser.NewParser(parser.Options{})
	files, err := fs.Glob(rules.FS, "*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4)

	recorded := map[string]bool{}
	used := map[string][]string{} // metric -> files
	alerts := map[string]bool{}
	for _, f := range files {
		b, err := fs.ReadFile(rules.FS, f)
		require.NoError(t, err)
		rgs, errs := rulefmt.Parse(b, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		require.Empty(t, errs, f)
		require.NotEmpty(t, rgs.Groups, f)
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				if r.Alert != "" {
					require.False(t, alerts[r.Alert], "alert %s defined twice", r.Alert)
					alerts[r.Alert] = true
					require.Contains(t, []string{"info", "warning", "critical"}, r.Labels["severity"], "%s: %s needs a severity", f, r.Alert)
					require.NotEmpty(t, r.Annotations["summary"], "%s: %s needs a summary", f, r.Alert)
					// The evidence annotation must be PromQL once its
					// templates are filled in.
					ev := strings.NewReplacer("{{ $labels.vm_id }}", "x", "{{ $labels.host }}", "x").Replace(r.Annotations["evidence"])
					_, err := p.ParseExpr(ev)
					require.NoError(t, err, "%s: %s evidence", f, r.Alert)
				}
				expr, err := p.ParseExpr(r.Expr)
				require.NoError(t, err)
				parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
					if vs, ok := n.(*parser.VectorSelector); ok {
						require.NotEmpty(t, vs.Name, "%s: selectors must name their metric", f)
						used[vs.Name] = append(used[vs.Name], f)
					}
					return nil
				})
			}
		}
	}
	for m, fs := range used {
		if recorded[m] {
			continue
		}
		_, ok := catalog.Lookup(m)
		require.True(t, ok, "metric %s (used in %v) is not in the catalogue", m, fs)
		require.Contains(t, string(doc), "`"+m+"`", "metric %s is not in docs/metrics.md", m)
	}
	for _, want := range []string{"VMCrashed", "HostDown", "VMCPUUsageAnomalous", "VMDiskFillsWithin24h"} {
		require.True(t, alerts[want], "missing %s", want)
	}
}
