package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Snapshot format: the 4-byte magic "NCMS", a model kind byte, a format
// version byte, then the model's fields as little-endian 64-bit values.

// ErrSnapshot is returned (wrapped) when a snapshot cannot be decoded: wrong
// magic, another model kind, an unknown version or a truncated body.
var ErrSnapshot = errors.New("invalid model snapshot")

const snapshotMagic = "NCMS"

// model kinds in snapshots.
const (
	kindEnsemble byte = 1 + iota
	kindRobustZ
	kindCUSUM
	kindEWMA
	kindRobust
	kindProfile
	kindLikelihood
	kindHoltWinters
	kindCounterRate
)

type encoder struct{ b []byte }

func newEncoder(kind, version byte, size int) *encoder {
	e := &encoder{b: make([]byte, 0, 6+size)}
	e.b = append(e.b, snapshotMagic...)
	e.b = append(e.b, kind, version)
	return e
}

func (e *encoder) f64(v float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v)) }
func (e *encoder) i64(v int64)   { e.b = binary.LittleEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) f32(v float32) { e.b = binary.LittleEndian.AppendUint32(e.b, math.Float32bits(v)) }
func (e *encoder) bytes(p []byte) {
	e.i64(int64(len(p)))
	e.b = append(e.b, p...)
}

type decoder struct {
	b   []byte
	err error
}

func newDecoder(data []byte, kind, version byte) *decoder {
	d := &decoder{b: data}
	if len(data) < 6 || string(data[:4]) != snapshotMagic {
		d.err = fmt.Errorf("%w: bad magic", ErrSnapshot)
		return d
	}
	if data[4] != kind {
		d.err = fmt.Errorf("%w: model kind %d, want %d", ErrSnapshot, data[4], kind)
		return d
	}
	if data[5] != version {
		d.err = fmt.Errorf("%w: version %d, want %d", ErrSnapshot, data[5], version)
		return d
	}
	d.b = data[6:]
	return d
}

func (d *decoder) u64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.err = fmt.Errorf("%w: truncated", ErrSnapshot)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }
func (d *decoder) i64() int64   { return int64(d.u64()) }
func (d *decoder) f32() float32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.err = fmt.Errorf("%w: truncated", ErrSnapshot)
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return math.Float32frombits(v)
}
func (d *decoder) bytes() []byte {
	n := d.i64()
	if d.err != nil {
		return nil
	}
	if n < 0 || n > int64(len(d.b)) {
		d.err = fmt.Errorf("%w: truncated", ErrSnapshot)
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrSnapshot, len(d.b))
	}
	return d.err
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
