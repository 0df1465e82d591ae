package prw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"

	"github.com/novacron/novacron"
)

// Protobuf field numbers and wire types of the remote-write 1.0 messages
// (prometheus/prompb/remote.proto and types.proto) that NovaCron reads.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5

	fieldWriteRequestTimeseries = 1
	fieldTimeSeriesLabels       = 1
	fieldTimeSeriesSamples      = 2
	fieldTimeSeriesHistograms   = 4
	fieldLabelName              = 1
	fieldLabelValue             = 2
	fieldSampleValue            = 1
	fieldSampleTimestamp        = 2
)

var (
	errTruncated   = errors.New("unexpected end of input")
	errOverflow    = errors.New("varint overflows 64 bits")
	errFieldZero   = errors.New("illegal field number 0")
	errWireType    = errors.New("unsupported wire type")
	errLenNegative = errors.New("length beyond the end of input")
)

// Scan describes a WriteRequest that ScanWriteRequest accepted.
type Scan struct {
	// Series and Samples count the request's series and float samples.
	Series, Samples int
	// Plain reports that the request holds nothing but series with labels
	// and float samples: no exemplars, native histograms, metadata or
	// unknown fields. The bytes of a plain request can be forwarded as is
	// (and concatenated with other plain requests into one request) and
	// store exactly what DecodeWriteRequest would return; a request that
	// is not plain should be decoded and encoded again, which drops what
	// NovaCron ignores.
	Plain bool
	// labels counts every label of every series, to size the decode.
	labels int
}

// ScanWriteRequest checks a raw (not snappy-compressed) remote-write
// WriteRequest as DecodeWriteRequest does, with the same errors, without
// allocating when it is valid. A valid request is well-formed protobuf
// whose series all pass Validate, with native histograms rejected as by
// DecodeWriteRequest.
//
// The concatenation of valid plain requests is a valid plain request of
// all their series (WriteRequest has one repeated field), so a batch of
// records can be checked record by record and sent as one request.
func ScanWriteRequest(b []byte) (Scan, error) {
	if sc, ok := fastScan(b); ok {
		return sc, nil
	}
	// Something is wrong: find what, in DecodeWriteRequest's order.
	return preciseScan(b)
}

// preciseScan checks b in several passes and names the first problem as
// validateSeries would.
func preciseScan(b []byte) (Scan, error) {
	sc, err := scanStructure(b)
	if err != nil {
		return Scan{}, fmt.Errorf("%w: malformed protobuf: %w", ErrInvalid, err)
	}
	if sc.Series == 0 {
		return Scan{}, fmt.Errorf("%w: no series", ErrInvalid)
	}
	idx := 0
	for i := 0; i < len(b); {
		num, wt, val, next := nextField(b, i)
		i = next
		if num != fieldWriteRequestTimeseries || wt != wireBytes {
			continue
		}
		if err := validateEncodedSeries(idx, val); err != nil {
			return Scan{}, err
		}
		idx++
	}
	return sc, nil
}

// scanStructure walks every message NovaCron reads, checking that it is
// well-formed, and counts series, labels and samples.
func scanStructure(b []byte) (Scan, error) {
	sc := Scan{Plain: true}
	err := walkFields(b, func(num, wt int, val []byte) error {
		if num != fieldWriteRequestTimeseries {
			sc.Plain = false
			return nil
		}
		if wt != wireBytes {
			return fmt.Errorf("WriteRequest field %d has wire type %d", num, wt)
		}
		sc.Series++
		return walkFields(val, func(num, wt int, val []byte) error {
			switch num {
			case fieldTimeSeriesLabels:
				if wt != wireBytes {
					return fmt.Errorf("TimeSeries field %d has wire type %d", num, wt)
				}
				sc.labels++
				return walkFields(val, func(num, wt int, _ []byte) error {
					switch {
					case (num == fieldLabelName || num == fieldLabelValue) && wt != wireBytes:
						return fmt.Errorf("Label field %d has wire type %d", num, wt)
					case num != fieldLabelName && num != fieldLabelValue:
						sc.Plain = false
					}
					return nil
				})
			case fieldTimeSeriesSamples:
				if wt != wireBytes {
					return fmt.Errorf("TimeSeries field %d has wire type %d", num, wt)
				}
				sc.Samples++
				return walkFields(val, func(num, wt int, _ []byte) error {
					switch {
					case num == fieldSampleValue && wt != wireFixed64, num == fieldSampleTimestamp && wt != wireVarint:
						return fmt.Errorf("Sample field %d has wire type %d", num, wt)
					case num != fieldSampleValue && num != fieldSampleTimestamp:
						sc.Plain = false
					}
					return nil
				})
			default:
				sc.Plain = false
				return nil
			}
		})
	})
	return sc, err
}

// walkFields calls fn for every field of the message b, with the field's
// bytes for length-delimited fields. It stops at the first error.
func walkFields(b []byte, fn func(num, wt int, val []byte) error) error {
	for i := 0; i < len(b); {
		key, n := uvarint(b[i:])
		if n <= 0 {
			return varintErr(n)
		}
		i += n
		num, wt := int(key>>3), int(key&7)
		if key>>3 == 0 {
			return errFieldZero
		}
		if key>>3 > 1<<29-1 {
			return fmt.Errorf("field number %d out of range", key>>3)
		}
		var val []byte
		switch wt {
		case wireVarint:
			_, n := uvarint(b[i:])
			if n <= 0 {
				return varintErr(n)
			}
			i += n
		case wireFixed64:
			if len(b)-i < 8 {
				return errTruncated
			}
			i += 8
		case wireFixed32:
			if len(b)-i < 4 {
				return errTruncated
			}
			i += 4
		case wireBytes:
			l, n := uvarint(b[i:])
			if n <= 0 {
				return varintErr(n)
			}
			i += n
			if l > uint64(len(b)-i) {
				return errLenNegative
			}
			val = b[i : i+int(l)]
			i += int(l)
		default:
			return fmt.Errorf("%w %d (field %d)", errWireType, wt, num)
		}
		if err := fn(num, wt, val); err != nil {
			return err
		}
	}
	return nil
}

func varintErr(n int) error {
	if n == 0 {
		return errTruncated
	}
	return errOverflow
}

// uvarint decodes a base-128 varint at the start of b, returning the value
// and its length: 0 when b ends first, negative when it overflows.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	var x uint64
	var s uint
	for i := 0; i < len(b); i++ {
		if i == 10 {
			return 0, -(i + 1)
		}
		c := b[i]
		if c < 0x80 {
			if i == 9 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

// nextField reads the field at b[i:], which scanStructure has checked. It
// returns the field number, wire type, the bytes of a length-delimited
// field or the raw bytes of a fixed-size one, the varint value (in val's
// place, see fieldVarint) and the index after the field.
func nextField(b []byte, i int) (num, wt int, val []byte, next int) {
	key, n := uvarint(b[i:])
	i += n
	num, wt = int(key>>3), int(key&7)
	switch wt {
	case wireVarint:
		_, n := uvarint(b[i:])
		val = b[i : i+n]
		i += n
	case wireFixed64:
		val = b[i : i+8]
		i += 8
	case wireFixed32:
		val = b[i : i+4]
		i += 4
	case wireBytes:
		l, n := uvarint(b[i:])
		i += n
		val = b[i : i+int(l)]
		i += int(l)
	}
	return num, wt, val, i
}

// labelOf returns the name and value of a checked Label message; the last
// occurrence of a field wins, as in every protobuf decoder.
func labelOf(b []byte) (name, value []byte) {
	for i := 0; i < len(b); {
		num, _, val, next := nextField(b, i)
		i = next
		switch num {
		case fieldLabelName:
			name = val
		case fieldLabelValue:
			value = val
		}
	}
	return name, value
}

// sampleOf returns the timestamp and value of a checked Sample message.
func sampleOf(b []byte) (t int64, v float64) {
	for i := 0; i < len(b); {
		num, wt, val, next := nextField(b, i)
		i = next
		switch {
		case num == fieldSampleTimestamp && wt == wireVarint:
			x, _ := uvarint(val)
			t = int64(x)
		case num == fieldSampleValue && wt == wireFixed64:
			v = math.Float64frombits(binary.LittleEndian.Uint64(val))
		}
	}
	return t, v
}

// validateEncodedSeries applies validateSeries' rules, in its order and
// with its messages, to the TimeSeries message b (series number i), and
// rejects series of native histograms only, as DecodeWriteRequest does.
// It allocates only to build an error.
func validateEncodedSeries(i int, b []byte) error {
	var labels, samples, histograms int
	for j := 0; j < len(b); {
		num, _, _, next := nextField(b, j)
		j = next
		switch num {
		case fieldTimeSeriesLabels:
			labels++
		case fieldTimeSeriesSamples:
			samples++
		case fieldTimeSeriesHistograms:
			histograms++
		}
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: series %d (%s): %s", ErrInvalid, i, encodedLabels(b).String(), fmt.Sprintf(format, args...))
	}
	if samples == 0 && histograms > 0 {
		return fail("native histogram samples are not supported")
	}
	if labels == 0 {
		return fail("no labels")
	}
	var prev, metric []byte
	first := true
	for j := 0; j < len(b); {
		num, _, val, next := nextField(b, j)
		j = next
		if num != fieldTimeSeriesLabels {
			continue
		}
		name, value := labelOf(val)
		if !isValidLabelName(name) {
			return fail("invalid label name %q", name)
		}
		if len(value) == 0 {
			return fail("label %q has an empty value", name)
		}
		if !utf8.Valid(value) {
			return fail("label %q has a value that is not valid UTF-8", name)
		}
		if !first {
			if string(prev) == string(name) {
				return fail("duplicate label name %q", name)
			}
			if string(prev) > string(name) {
				return fail("label names not sorted: %q after %q", name, prev)
			}
		}
		first = false
		prev = name
		if string(name) == novacron.MetricNameLabel {
			metric = value
		}
	}
	if len(metric) == 0 {
		return fail("no metric name (label %s)", novacron.MetricNameLabel)
	}
	if !isValidMetricName(metric) {
		return fail("invalid metric name %q", metric)
	}
	if samples == 0 {
		return fail("no samples")
	}
	var last int64
	first = true
	for j := 0; j < len(b); {
		num, _, val, next := nextField(b, j)
		j = next
		if num != fieldTimeSeriesSamples {
			continue
		}
		t, _ := sampleOf(val)
		if !first && t < last {
			return fail("sample timestamps not in order: %d after %d", t, last)
		}
		first = false
		last = t
	}
	return nil
}

// encodedLabels decodes the labels of the checked TimeSeries message b,
// for error messages.
func encodedLabels(b []byte) novacron.Labels {
	var ls novacron.Labels
	for j := 0; j < len(b); {
		num, _, val, next := nextField(b, j)
		j = next
		if num == fieldTimeSeriesLabels {
			name, value := labelOf(val)
			ls = append(ls, novacron.Label{Name: string(name), Value: string(value)})
		}
	}
	return ls
}

// decodeChecked appends the series of b, which ScanWriteRequest accepted
// with result sc, to dst. The label strings share one allocation holding
// only the label bytes (not the samples), and the labels and samples of
// all series share one allocation each, so the result owns its memory and
// costs four allocations however many series b holds. Each series' slices
// are capped at their length, so appending to one cannot overwrite the
// next.
func decodeChecked(b []byte, sc Scan, dst []novacron.Series) []novacron.Series {
	total := 0
	forEachLabel(b, func(name, value []byte) { total += len(name) + len(value) })
	// text is written below, before any string made from it is returned,
	// and never after: the strings see immutable bytes.
	text := make([]byte, total)
	var str string
	if total > 0 {
		str = unsafe.String(&text[0], total)
	}
	off := 0
	cut := func(v []byte) string {
		n := copy(text[off:], v)
		s := str[off : off+n]
		off += n
		return s
	}
	labels := make(novacron.Labels, 0, sc.labels)
	samples := make([]novacron.Sample, 0, sc.Samples)
	dst = growSeries(dst, sc.Series)
	for i := 0; i < len(b); {
		num, wt, ser, next := nextField(b, i)
		i = next
		if num != fieldWriteRequestTimeseries || wt != wireBytes {
			continue
		}
		l0, s0 := len(labels), len(samples)
		for j := 0; j < len(ser); {
			num, _, val, next := nextField(ser, j)
			j = next
			switch num {
			case fieldTimeSeriesLabels:
				name, value := labelOf(val)
				labels = append(labels, novacron.Label{Name: cut(name), Value: cut(value)})
			case fieldTimeSeriesSamples:
				t, v := sampleOf(val)
				samples = append(samples, novacron.Sample{T: t, V: v})
			}
		}
		dst = append(dst, novacron.Series{
			Labels:  labels[l0:len(labels):len(labels)],
			Samples: samples[s0:len(samples):len(samples)],
		})
	}
	return dst
}

// forEachLabel calls fn with every label of the checked request b.
func forEachLabel(b []byte, fn func(name, value []byte)) {
	for i := 0; i < len(b); {
		num, wt, ser, next := nextField(b, i)
		i = next
		if num != fieldWriteRequestTimeseries || wt != wireBytes {
			continue
		}
		for j := 0; j < len(ser); {
			num, _, val, next := nextField(ser, j)
			j = next
			if num == fieldTimeSeriesLabels {
				fn(labelOf(val))
			}
		}
	}
}

func growSeries(s []novacron.Series, n int) []novacron.Series {
	if cap(s)-len(s) < n {
		ns := make([]novacron.Series, len(s), len(s)+max(n, len(s)))
		copy(ns, s)
		s = ns
	}
	return s
}

// isValidLabelName is IsValidLabelName for strings and byte slices.
func isValidLabelName[T ~string | ~[]byte](name T) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// isValidMetricName is IsValidMetricName for strings and byte slices.
func isValidMetricName[T ~string | ~[]byte](name T) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// fastScan checks b in one pass, without closures or error values. It
// accepts exactly what the precise checks (scanStructure, then
// validateEncodedSeries) accept; when it refuses, ScanWriteRequest runs
// those to name the problem.
func fastScan(b []byte) (sc Scan, ok bool) {
	sc.Plain = true
	for i := 0; i < len(b); {
		num, wt, val, next, ok := field(b, i)
		if !ok {
			return sc, false
		}
		i = next
		if num != fieldWriteRequestTimeseries {
			sc.Plain = false
			continue
		}
		if wt != wireBytes {
			return sc, false
		}
		labels, samples, plain, ok := fastSeries(val)
		if !ok {
			return sc, false
		}
		sc.Series++
		sc.labels += labels
		sc.Samples += samples
		sc.Plain = sc.Plain && plain
	}
	return sc, sc.Series > 0
}

// fastSeries checks one TimeSeries message for fastScan.
func fastSeries(b []byte) (labels, samples int, plain, ok bool) {
	plain = true
	var prev, metric []byte
	var last int64
	for i := 0; i < len(b); {
		num, wt, val, next, ok := field(b, i)
		if !ok {
			return 0, 0, false, false
		}
		i = next
		switch num {
		case fieldTimeSeriesLabels:
			if wt != wireBytes {
				return 0, 0, false, false
			}
			var name, value []byte
			for j := 0; j < len(val); {
				num, wt, v, next, ok := field(val, j)
				if !ok {
					return 0, 0, false, false
				}
				j = next
				switch {
				case num == fieldLabelName && wt == wireBytes:
					name = v
				case num == fieldLabelValue && wt == wireBytes:
					value = v
				case num == fieldLabelName || num == fieldLabelValue:
					return 0, 0, false, false
				default:
					plain = false
				}
			}
			if !isValidLabelName(name) || len(value) == 0 || !utf8.Valid(value) ||
				(labels > 0 && string(prev) >= string(name)) {
				return 0, 0, false, false
			}
			if string(name) == novacron.MetricNameLabel {
				metric = value
			}
			prev = name
			labels++
		case fieldTimeSeriesSamples:
			if wt != wireBytes {
				return 0, 0, false, false
			}
			var t int64
			for j := 0; j < len(val); {
				num, wt, v, next, ok := field(val, j)
				if !ok {
					return 0, 0, false, false
				}
				j = next
				switch {
				case num == fieldSampleTimestamp && wt == wireVarint:
					x, _ := uvarint(v)
					t = int64(x)
				case num == fieldSampleValue && wt == wireFixed64:
				case num == fieldSampleTimestamp || num == fieldSampleValue:
					return 0, 0, false, false
				default:
					plain = false
				}
			}
			if samples > 0 && t < last {
				return 0, 0, false, false
			}
			last = t
			samples++
		default:
			// Exemplars, histograms, unknown fields: the precise path
			// checks their place (a series of histograms only is refused).
			plain = false
		}
	}
	if labels == 0 || samples == 0 || !isValidMetricName(metric) {
		return 0, 0, false, false
	}
	return labels, samples, plain, true
}

// field reads the field at b[i:] like nextField, checking it; ok is false
// when it is malformed. A varint field's val holds its encoding.
func field(b []byte, i int) (num, wt int, val []byte, next int, ok bool) {
	var key uint64
	if i < len(b) && b[i] < 0x80 {
		key = uint64(b[i])
		i++
	} else {
		k, n := uvarint(b[i:])
		if n <= 0 {
			return 0, 0, nil, 0, false
		}
		key = k
		i += n
	}
	if key>>3 == 0 || key>>3 > 1<<29-1 {
		return 0, 0, nil, 0, false
	}
	num, wt = int(key>>3), int(key&7)
	switch wt {
	case wireVarint:
		_, n := uvarint(b[i:])
		if n <= 0 {
			return 0, 0, nil, 0, false
		}
		return num, wt, b[i : i+n], i + n, true
	case wireFixed64:
		if len(b)-i < 8 {
			return 0, 0, nil, 0, false
		}
		return num, wt, b[i : i+8], i + 8, true
	case wireFixed32:
		if len(b)-i < 4 {
			return 0, 0, nil, 0, false
		}
		return num, wt, b[i : i+4], i + 4, true
	case wireBytes:
		var l uint64
		var n int
		if i < len(b) && b[i] < 0x80 {
			l, n = uint64(b[i]), 1
		} else if l, n = uvarint(b[i:]); n <= 0 {
			return 0, 0, nil, 0, false
		}
		i += n
		if l > uint64(len(b)-i) {
			return 0, 0, nil, 0, false
		}
		return num, wt, b[i : i+int(l)], i + int(l), true
	}
	return 0, 0, nil, 0, false
}
