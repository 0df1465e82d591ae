// Package checkpoint keeps the analytics stage's model state between
// processes: one snapshot per samples partition, saved by the processor
// that owns the partition and loaded by whichever processor takes it over.
//
// Two stores: Topic, a compacted single-partition bus topic, which any
// processor on any machine can read (the default, for processors that
// scale out on Kafka); and Dir, files under a directory, for one process
// (embedded mode) or processors sharing a file system.
package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/novacron/novacron"
)

// Store saves and loads partition snapshots. Implementations are safe for
// concurrent use.
type Store interface {
	// Save durably stores the snapshots, replacing earlier ones of the same
	// partitions; it returns once they would survive a crash.
	Save(ctx context.Context, snaps map[int32][]byte) error
	// Load returns the latest snapshot of each partition that has one;
	// partitions without are absent from the map.
	Load(ctx context.Context, partitions []int32) (map[int32][]byte, error)
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(1<<30))
)

// Dir is a Store of one file per partition under a directory, written to
// a temporary file, synced and renamed, so a crash leaves the old or the
// new snapshot, never half of one.
type Dir struct {
	path string
}

// NewDir returns a store under path, creating the directory.
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("create checkpoint directory %q: %w", path, err)
	}
	return &Dir{path: path}, nil
}

func (d *Dir) file(p int32) string {
	return filepath.Join(d.path, "partition-"+strconv.Itoa(int(p))+".ckpt")
}

// Save implements Store.
func (d *Dir) Save(_ context.Context, snaps map[int32][]byte) error {
	for p, b := range snaps {
		tmp, err := os.CreateTemp(d.path, ".tmp-*")
		if err != nil {
			return fmt.Errorf("checkpoint partition %d: %w", p, err)
		}
		_, err = tmp.Write(encoder.EncodeAll(b, nil))
		err = errors.Join(err, tmp.Sync(), tmp.Close())
		if err == nil {
			err = os.Rename(tmp.Name(), d.file(p))
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("checkpoint partition %d to %q: %w", p, d.file(p), err)
		}
	}
	if f, err := os.Open(d.path); err == nil {
		_ = f.Sync()
		_ = f.Close()
	}
	return nil
}

// Load implements Store.
func (d *Dir) Load(_ context.Context, partitions []int32) (map[int32][]byte, error) {
	out := map[int32][]byte{}
	for _, p := range partitions {
		b, err := os.ReadFile(d.file(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load checkpoint of partition %d: %w", p, err)
		}
		raw, err := decoder.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("load checkpoint %q: %w", d.file(p), err)
		}
		out[p] = raw
	}
	return out, nil
}

// MaxChunk is the largest record value Topic writes: snapshots are split
// into chunks below Kafka's default 1 MiB message limit.
const MaxChunk = 900 << 10

// Topic is a Store on a compacted bus topic with one partition. Each
// snapshot is compressed and split into chunks keyed
// "<partition>/<chunk>", each carrying the save's generation and the chunk
// count, so compaction keeps the newest chunk per key and a load takes the
// newest generation whose chunks are all present.
//
// Load reads the topic from the start in a consumer group of its own and
// stops at a marker it produced first (a tombstone with a unique key): on
// a single partition, everything saved before the marker has been seen.
type Topic struct {
	bus   novacron.Bus
	topic string
	// groupPrefix names the throw-away groups Load joins.
	groupPrefix string
}

// NewTopic returns a store on topic; the topic must exist with one
// partition and cleanup.policy=compact (see Spec).
func NewTopic(bus novacron.Bus, topic, groupPrefix string) *Topic {
	return &Topic{bus: bus, topic: topic, groupPrefix: groupPrefix}
}

// Spec returns the topic's specification for EnsureTopics.
func Spec(topic string, rf int16) novacron.TopicSpec {
	return novacron.TopicSpec{Name: topic, Partitions: 1, ReplicationFactor: rf,
		Configs: map[string]string{"cleanup.policy": "compact"}}
}

// Save implements Store.
func (t *Topic) Save(ctx context.Context, snaps map[int32][]byte) error {
	gen := uint64(time.Now().UnixNano())
	var recs []*novacron.Record
	for p, b := range snaps {
		z := encoder.EncodeAll(b, nil)
		n := (len(z) + MaxChunk - 1) / MaxChunk
		n = max(n, 1)
		for i := range n {
			part := z[i*MaxChunk : min((i+1)*MaxChunk, len(z))]
			v := binary.BigEndian.AppendUint64(nil, gen)
			v = binary.AppendUvarint(v, uint64(i))
			v = binary.AppendUvarint(v, uint64(n))
			v = append(v, part...)
			recs = append(recs, &novacron.Record{Topic: t.topic, Key: []byte(fmt.Sprintf("%d/%d", p, i)), Value: v})
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if err := t.bus.Produce(ctx, recs...); err != nil {
		return fmt.Errorf("save checkpoints to topic %q: %w", t.topic, err)
	}
	return nil
}

type chunkSet struct {
	gen    uint64
	total  int
	chunks map[int][]byte
}

// Load implements Store.
func (t *Topic) Load(ctx context.Context, partitions []int32) (map[int32][]byte, error) {
	want := map[int32]bool{}
	for _, p := range partitions {
		want[p] = true
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	c, err := t.bus.Consumer(t.groupPrefix+"-load-"+nonce, []string{t.topic}, novacron.WithMaxPollRecords(1000))
	if err != nil {
		return nil, fmt.Errorf("read checkpoints from topic %q: %w", t.topic, err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	marker := "marker/" + nonce
	if err := t.bus.Produce(ctx, &novacron.Record{Topic: t.topic, Key: []byte(marker)}); err != nil {
		return nil, fmt.Errorf("read checkpoints from topic %q: produce marker: %w", t.topic, err)
	}
	sets := map[int32]*chunkSet{}
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			return nil, fmt.Errorf("read checkpoints from topic %q: %w", t.topic, err)
		}
		for _, r := range recs {
			k := string(r.Key)
			if k == marker {
				return assemble(sets)
			}
			if strings.HasPrefix(k, "marker/") || len(r.Value) == 0 {
				continue
			}
			ps, cs, ok := strings.Cut(k, "/")
			if !ok {
				continue
			}
			p64, err1 := strconv.ParseInt(ps, 10, 32)
			ci, err2 := strconv.Atoi(cs)
			if err1 != nil || err2 != nil || !want[int32(p64)] || len(r.Value) < 8 {
				continue
			}
			gen := binary.BigEndian.Uint64(r.Value)
			rest := r.Value[8:]
			idx, n1 := binary.Uvarint(rest)
			if n1 <= 0 {
				continue
			}
			total, n2 := binary.Uvarint(rest[n1:])
			if n2 <= 0 || int(idx) != ci || total == 0 || total > 1<<16 {
				continue
			}
			s := sets[int32(p64)]
			if s == nil || gen > s.gen {
				s = &chunkSet{gen: gen, total: int(total), chunks: map[int][]byte{}}
				sets[int32(p64)] = s
			}
			if gen == s.gen {
				s.chunks[ci] = bytes.Clone(rest[n1+n2:])
			}
		}
		c.Ack(recs...)
	}
}

func assemble(sets map[int32]*chunkSet) (map[int32][]byte, error) {
	out := map[int32][]byte{}
	for p, s := range sets {
		if len(s.chunks) != s.total {
			// The newest save is incomplete (a crash between chunks):
			// an older complete one was overwritten by its chunks, so
			// there is nothing consistent to restore.
			continue
		}
		var z []byte
		for i := range s.total {
			z = append(z, s.chunks[i]...)
		}
		raw, err := decoder.DecodeAll(z, nil)
		if err != nil {
			return nil, fmt.Errorf("decode checkpoint of partition %d: %w", p, err)
		}
		out[p] = raw
	}
	return out, nil
}
