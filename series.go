package novacron

import (
	"hash/fnv"
	"slices"
	"strings"
)

// MetricNameLabel is the label that carries a series' metric name, as in
// Prometheus.
const MetricNameLabel = "__name__"

// Label is one name/value pair of a series' identity.
type Label struct {
	Name  string
	Value string
}

// Labels identify a series. Collections built by NovaCron are sorted by
// name; call Sort before comparing or hashing labels of unknown origin.
type Labels []Label

// Sort sorts the labels by name in place and returns them.
func (ls Labels) Sort() Labels {
	slices.SortFunc(ls, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
	return ls
}

// Get returns the value of the named label, or "" when it is absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Hash returns a stable 64-bit FNV-1a hash of the sorted labels. It is the
// series key used to pick a bus partition, so it must never change between
// releases: one series always lands on one partition.
func (ls Labels) Hash() uint64 {
	h := fnv.New64a()
	var sep = []byte{0xff}
	for _, l := range ls {
		h.Write([]byte(l.Name))
		h.Write(sep)
		h.Write([]byte(l.Value))
		h.Write(sep)
	}
	return h.Sum64()
}

// String renders the labels in PromQL selector form: name{a="b",...}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteString(ls.Get(MetricNameLabel))
	b.WriteByte('{')
	first := true
	for _, l := range ls {
		if l.Name == MetricNameLabel {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(strings.ReplaceAll(l.Value, `"`, `\"`))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Sample is one value of a series at a time, in milliseconds since the Unix
// epoch (the Prometheus convention).
type Sample struct {
	T int64
	V float64
}

// Series is a batch of samples of one series, oldest first.
type Series struct {
	Labels  Labels
	Samples []Sample
}
