package catalog

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var nameRE = regexp.MustCompile(`^novacron_(vm|host|collector)_[a-z0-9_]+$`)

func TestMetricNamesFollowConventions(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range Metrics() {
		t.Run(m.Name, func(t *testing.T) {
			require.False(t, seen[m.Name], "duplicate")
			seen[m.Name] = true
			require.Regexp(t, nameRE, m.Name)
			require.True(t, strings.HasPrefix(m.Name, "novacron_"+string(m.Subject)+"_"), "subject %q not in name", m.Subject)
			require.NotEmpty(t, m.Help)
			require.Equal(t, m.Type == Counter, strings.HasSuffix(m.Name, "_total"), "only counters end in _total")
			base := strings.TrimSuffix(m.Name, "_total")
			switch m.Unit {
			case "":
				for _, u := range []string{"_seconds", "_bytes", "_ratio"} {
					require.False(t, strings.HasSuffix(base, u), "unit suffix %s without a unit", u)
				}
			default:
				require.True(t, strings.HasSuffix(base, "_"+m.Unit), "unit %q not the name's suffix", m.Unit)
			}
			for _, l := range m.Labels {
				require.NotContains(t, VMIdentityLabels(), l, "extra label repeats an identity label")
			}
		})
	}
}

func TestIdentityLabelsSorted(t *testing.T) {
	require.True(t, slices.IsSorted(VMIdentityLabels()))
	require.True(t, slices.IsSorted(HostIdentityLabels()))
	for _, l := range HostIdentityLabels() {
		require.Contains(t, VMIdentityLabels(), l, "a VM series must be aggregatable by every host label")
	}
}

func TestDocsListEveryMetric(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	require.NoError(t, err)
	for _, m := range Metrics() {
		require.Contains(t, string(doc), "`"+m.Name+"`", "docs/metrics.md does not list %s", m.Name)
	}
	// And the other way round: every full metric name in the catalogue
	// part of the docs is known. NovaCron's own service metrics and the
	// derived series documented after it are not part of the catalogue.
	catalogue, _, _ := strings.Cut(string(doc), "## NovaCron's own metrics")
	for _, name := range regexp.MustCompile("`(novacron_[a-z0-9_]+)`").FindAllStringSubmatch(catalogue, -1) {
		_, ok := Lookup(name[1])
		require.True(t, ok, "docs/metrics.md names %s, which the catalogue lacks", name[1])
	}
}

func TestMetricsReturnsACopy(t *testing.T) {
	ms := Metrics()
	ms[0].Name = "changed"
	ms[2].Labels[0] = "changed"
	m, ok := Lookup(VMInfo)
	require.True(t, ok)
	require.Equal(t, VMInfo, m.Name)
	require.Equal(t, VMInfo, Metrics()[0].Name)
	require.Equal(t, VMPowerState, Metrics()[2].Name)
	require.Equal(t, []string{LabelState}, Metrics()[2].Labels)
}
