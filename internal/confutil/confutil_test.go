package confutil

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrefixFlattensAndQualifies(t *testing.T) {
	inner := errors.Join(Errorf("interval", "must be positive"), Errorf("tls.ca_file", "missing"))
	outer := Prefix("collectors", errors.Join(Prefix("sim", inner), errors.New("plain problem")))
	leaves := Flatten(outer)
	require.Len(t, leaves, 3)
	var got []string
	for _, e := range leaves {
		var fe *FieldError
		require.ErrorAs(t, e, &fe)
		got = append(got, fe.Field)
	}
	require.Equal(t, []string{"collectors.sim.interval", "collectors.sim.tls.ca_file", "collectors"}, got)
	require.EqualError(t, leaves[0], "collectors.sim.interval: must be positive")
}
