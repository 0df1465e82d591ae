package eventsapi

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/pipeline/events"
)

// FuzzParseQuery: any query string yields a query within bounds or an
// error, never a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10&offset=5", "from=2026-03-02T00:00:00Z&to=1772409600", "sort=-score&state=open",
		"limit=0", "limit=1001", "offset=-1", "from=abc", "to=1e12", "sort=+updated&vm_id=vm-1&host=h&metric=m",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 4096 {
			return
		}
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, kind := range []string{events.KindAnomaly, events.KindIncident, events.KindForecast} {
			q, err := ParseQuery(v, kind)
			if err != nil {
				continue
			}
			require.Equal(t, kind, q.Kind)
			require.GreaterOrEqual(t, q.Limit, 1)
			require.LessOrEqual(t, q.Limit, MaxLimit)
			require.GreaterOrEqual(t, q.Offset, 0)
			require.False(t, !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From))
		}
	})
}
