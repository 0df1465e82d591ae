package analytics

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/novacron/novacron/models"
)

// Snapshot format (little endian, varints as encoding/binary):
//
//	"NCA1" next:varint count:uvarint
//	count × { key:u64 flags:u8 lastT prevT:varint prevV:f64 nextEmit:varint maxScore:f64
//	          [open: anomalyID:u64 openT:varint peak reported:f64 lastUpdate quietSince since:varint component:u8]
//	          [armed: peak:f64 since:varint component:u8]
//	          [det: len:uvarint bytes]
//	          [fc: histLen head n:uvarint hist:f32×histLen bucket:varint sum:f64 cnt nextRun streak:varint
//	               [breach: breachID:u64 breachETA:varint breachSeq:uvarint]
//	               [profile: slots:uvarint level:f64 profN:uvarint prof:f32×slots]] }
const snapshotMagic = "NCA1"

const (
	flagRate = 1 << iota
	flagOpen
	flagDet
	flagFC
	flagBreach
	flagProfile
	flagArmed
)

// Snapshot encodes the partition's state: every series' model state and
// the offset of the next record it expects. It is nil when the processor
// has no state for the partition.
func (p *Processor) Snapshot(part int32) ([]byte, error) {
	pt := p.parts[part]
	if pt == nil {
		return nil, nil
	}
	b := append(make([]byte, 0, 64+len(pt.series)*900), snapshotMagic...)
	b = binary.AppendVarint(b, pt.next)
	b = binary.AppendUvarint(b, uint64(len(pt.series)))
	for key, st := range pt.series {
		b = binary.LittleEndian.AppendUint64(b, key)
		var flags byte
		if st.rate {
			flags |= flagRate
		}
		if st.open {
			flags |= flagOpen
		}
		if st.armed {
			flags |= flagArmed
		}
		if st.det != nil {
			flags |= flagDet
		}
		if st.fc != nil {
			flags |= flagFC
			if st.fc.breach {
				flags |= flagBreach
			}
			if st.fc.prof != nil {
				flags |= flagProfile
			}
		}
		b = append(b, flags)
		b = binary.AppendVarint(b, st.lastT)
		b = binary.AppendVarint(b, st.prevT)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.prevV))
		b = binary.AppendVarint(b, st.nextEmit)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.maxScore))
		if st.open {
			b = binary.LittleEndian.AppendUint64(b, st.anomalyID)
			b = binary.AppendVarint(b, st.openT)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.peak))
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.reported))
			b = binary.AppendVarint(b, st.lastUpdate)
			b = binary.AppendVarint(b, st.quietSince)
			b = binary.AppendVarint(b, st.since)
			b = append(b, byte(st.component))
		}
		if st.armed {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(st.peak))
			b = binary.AppendVarint(b, st.since)
			b = append(b, byte(st.component))
		}
		if st.det != nil {
			d, err := st.det.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("snapshot detector of series %s: %w", st.labels, err)
			}
			b = binary.AppendUvarint(b, uint64(len(d)))
			b = append(b, d...)
		}
		if fc := st.fc; fc != nil {
			b = binary.AppendUvarint(b, uint64(len(fc.hist)))
			b = binary.AppendUvarint(b, uint64(fc.head))
			b = binary.AppendUvarint(b, uint64(fc.n))
			for _, v := range fc.hist {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
			b = binary.AppendVarint(b, fc.bucket)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(fc.sum))
			b = binary.AppendVarint(b, int64(fc.cnt))
			b = binary.AppendVarint(b, fc.nextRun)
			b = binary.AppendVarint(b, int64(fc.streak))
			if fc.breach {
				b = binary.LittleEndian.AppendUint64(b, fc.breachID)
				b = binary.AppendVarint(b, fc.breachETA)
				b = binary.AppendUvarint(b, uint64(fc.breachSeq))
			}
			if fc.prof != nil {
				b = binary.AppendUvarint(b, uint64(len(fc.prof)))
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(fc.level))
				b = binary.AppendUvarint(b, uint64(fc.profN))
				for _, v := range fc.prof {
					b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
				}
			}
		}
	}
	return b, nil
}

// Restore replaces the partition's state with a snapshot. Series come
// back without labels; each is matched against the rules again at its next
// sample. A detector snapshot that the current models cannot read (a new
// release changed the default detector) is counted in the returned number
// and that series' detector starts afresh.
func (p *Processor) Restore(part int32, data []byte) (fresh int, err error) {
	d := decoder{b: data}
	if len(data) < len(snapshotMagic) || string(data[:len(snapshotMagic)]) != snapshotMagic {
		return 0, fmt.Errorf("analytics snapshot of partition %d: bad magic", part)
	}
	d.b = d.b[len(snapshotMagic):]
	next := d.varint()
	n := d.uvarint()
	// A series takes at least 29 bytes (key, flags, five fields): a count
	// beyond that is corrupt and must not allocate.
	if d.err != nil || n > uint64(len(d.b))/29 {
		return 0, fmt.Errorf("analytics snapshot of partition %d: %w", part, errShortSnapshot)
	}
	series := make(map[uint64]*seriesState, n)
	for range n {
		key := d.u64()
		flags := d.byte()
		st := &seriesState{rule: -1, rate: flags&flagRate != 0}
		st.lastT, st.prevT = d.varint(), d.varint()
		st.prevV = d.f64()
		st.nextEmit = d.varint()
		st.maxScore = d.f64()
		if flags&flagOpen != 0 {
			st.open = true
			st.anomalyID = d.u64()
			st.openT = d.varint()
			st.peak, st.reported = d.f64(), d.f64()
			st.lastUpdate, st.quietSince, st.since = d.varint(), d.varint(), d.varint()
			st.component = models.Component(d.byte())
		}
		if flags&flagArmed != 0 {
			st.armed = true
			st.peak, st.since = d.f64(), d.varint()
			st.component = models.Component(d.byte())
		}
		if flags&flagDet != 0 {
			raw := d.bytes()
			if d.err == nil {
				det := models.NewDefaultDetector()
				if err := det.UnmarshalBinary(raw); err != nil {
					fresh++
				} else {
					st.det = det
				}
			}
		}
		if flags&flagFC != 0 {
			hl := d.uvarint()
			// Each point takes 4 bytes: a length beyond what is left is
			// corrupt, and must not allocate.
			if hl > 1<<20 || hl > uint64(len(d.b))/4 || d.err != nil {
				return 0, fmt.Errorf("analytics snapshot of partition %d: %w", part, errShortSnapshot)
			}
			fc := &forecastState{hist: make([]float32, hl)}
			fc.head, fc.n = int(d.uvarint()), int(d.uvarint())
			for i := range fc.hist {
				fc.hist[i] = math.Float32frombits(d.u32())
			}
			fc.bucket = d.varint()
			fc.sum = d.f64()
			fc.cnt = int32(d.varint())
			fc.nextRun = d.varint()
			fc.streak = int32(d.varint())
			if flags&flagBreach != 0 {
				fc.breach = true
				fc.breachID = d.u64()
				fc.breachETA = d.varint()
				fc.breachSeq = int32(d.uvarint())
			}
			if flags&flagProfile != 0 {
				np := d.uvarint()
				if np == 0 || np > 1<<16 || np > uint64(len(d.b))/4 || d.err != nil {
					return 0, fmt.Errorf("analytics snapshot of partition %d: %w", part, errShortSnapshot)
				}
				fc.level = d.f64()
				fc.profN = int32(min(d.uvarint(), 1<<30))
				fc.prof = make([]float32, np)
				for i := range fc.prof {
					fc.prof[i] = math.Float32frombits(d.u32())
				}
			}
			if fc.n > len(fc.hist) || fc.head >= max(len(fc.hist), 1) {
				return 0, fmt.Errorf("analytics snapshot of partition %d: bad forecast history", part)
			}
			st.fc = fc
		}
		if d.err != nil {
			return 0, fmt.Errorf("analytics snapshot of partition %d: %w", part, d.err)
		}
		series[key] = st
	}
	p.Drop(part)
	p.parts[part] = &partition{series: series, next: next}
	p.nSeries += len(series)
	return fresh, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShortSnapshot
	}
	d.b = nil
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
