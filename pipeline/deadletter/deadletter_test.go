package deadletter

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

func TestRecordKeepsOriginalAndNamesTheSource(t *testing.T) {
	src := &novacron.Record{Topic: "novacron.samples", Partition: 3, Offset: 42, Key: []byte("k"), Value: []byte{1, 2},
		Headers: []novacron.RecordHeader{{Key: "trace", Value: []byte("x")}}}
	dl := Record("novacron.deadletter", src, "decode", errors.New("bad varint"))
	require.Equal(t, "novacron.deadletter", dl.Topic)
	require.Equal(t, src.Key, dl.Key)
	require.Equal(t, src.Value, dl.Value)
	h := map[string]string{}
	for _, x := range dl.Headers {
		h[x.Key] = string(x.Value)
	}
	require.Equal(t, "x", h["trace"], "original headers are kept")
	require.Equal(t, "decode record at topic novacron.samples partition 3 offset 42: bad varint", h[HeaderError])
	require.Equal(t, "decode", h[HeaderStage])
	require.Equal(t, "novacron.samples", h[HeaderTopic])
	require.Equal(t, "3", h[HeaderPartition])
	require.Equal(t, "42", h[HeaderOffset])
	require.Len(t, src.Headers, 1, "the source record is not changed")
}
