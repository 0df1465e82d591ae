// Package deadletter builds the records NovaCron's pipeline stages send to
// the dead-letter topic: the original key, value and headers, plus headers
// naming the error and where the record came from, so nothing is dropped
// silently and an operator can inspect and re-produce it.
package deadletter

import (
	"fmt"
	"strconv"

	"github.com/novacron/novacron"
)

// Dead-letter record headers.
const (
	HeaderError     = "novacron.error"
	HeaderStage     = "novacron.stage"
	HeaderTopic     = "novacron.source.topic"
	HeaderPartition = "novacron.source.partition"
	HeaderOffset    = "novacron.source.offset"
)

// Record returns the dead-letter record for r, which failed at stage
// (decode, write, ...) with cause, addressed to topic. The error header
// names the source topic, partition and offset.
func Record(topic string, r *novacron.Record, stage string, cause error) *novacron.Record {
	msg := fmt.Sprintf("%s record at topic %s partition %d offset %d: %v", stage, r.Topic, r.Partition, r.Offset, cause)
	hs := make([]novacron.RecordHeader, 0, len(r.Headers)+5)
	hs = append(hs, r.Headers...)
	hs = append(hs,
		novacron.RecordHeader{Key: HeaderError, Value: []byte(msg)},
		novacron.RecordHeader{Key: HeaderStage, Value: []byte(stage)},
		novacron.RecordHeader{Key: HeaderTopic, Value: []byte(r.Topic)},
		novacron.RecordHeader{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		novacron.RecordHeader{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
	)
	return &novacron.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: hs}
}
