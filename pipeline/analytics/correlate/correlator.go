package correlate

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/novacron/novacron"
)

// Probable causes of an incident, the value of its "cause" detail.
const (
	// CauseHostContention: CPU steal rose together on several VMs of one
	// host (a noisy neighbour, an overcommitted host).
	CauseHostContention = "host_contention"
	// CauseVMRunaway: one VM's CPU rose far above its baseline without
	// more I/O or network traffic (a process spinning).
	CauseVMRunaway = "vm_runaway"
	// CauseMemoryLeak: one VM's memory use rose alone, with no change of
	// CPU or I/O to explain it.
	CauseMemoryLeak = "memory_leak"
	// CauseDiskFilling: one VM's disk usage rose above its baseline or is
	// forecast to reach its capacity threshold.
	CauseDiskFilling = "disk_filling"
	// CauseVMIdle: one VM's CPU fell together with its I/O or network
	// traffic (the workload stopped).
	CauseVMIdle = "vm_idle"
)

// Causes returns every probable cause.
func Causes() []string {
	return []string{CauseHostContention, CauseVMRunaway, CauseMemoryLeak, CauseDiskFilling, CauseVMIdle}
}

// Incident states, the value of the "state" detail.
const (
	StateOpen   = "open"
	StateClosed = "closed"
)

// Metric names the classification looks at.
const (
	metricVMCPU    = "novacron_vm_cpu_usage_ratio"
	metricVMSteal  = "novacron_vm_cpu_steal_seconds_total"
	metricVMMemory = "novacron_vm_memory_usage_ratio"
	metricVMDisk   = "novacron_vm_disk_usage_ratio"
	hostPrefix     = "novacron_host_"
)

func isIO(metric string) bool {
	return strings.HasPrefix(metric, "novacron_vm_disk_read") || strings.HasPrefix(metric, "novacron_vm_disk_write") ||
		strings.HasPrefix(metric, "novacron_vm_network_")
}

// signal is an anomaly or a forecast breach the correlator holds.
type signal struct {
	id     string
	vm     string
	host   string
	metric string
	up     bool
	breach bool
	start  int64 // ms
	value  float64
	expect float64
	comp   string // the detector's component ("shift", "level", ...)
	open   bool
	refs   []any
	inc    *incident
}

type incident struct {
	id      string
	cause   string
	host    string
	vm      string // empty for host scope
	start   int64
	members []*signal
	open    int
	updates int
}

func (in *incident) key() string {
	if in.vm != "" {
		return "vm/" + in.vm
	}
	return "host/" + in.host
}

type group struct {
	first int64
	sigs  []*signal
}

// Correlator turns the anomaly and forecast-breach events of one events
// partition into incident events. It does no I/O and is not safe for
// concurrent use. Event time drives it: a group is classified once an
// event (or Advance) at least Window after its first anomaly is seen.
type Correlator struct {
	window  int64
	maxHold int64
	source  string
	now     int64
	swept   int64

	signals map[string]*signal   // held: pending or member of an open incident
	pending map[string]*group    // host → group not yet classified
	open    map[string]*incident // "vm/<id>" or "host/<id>" → open incident

	events []novacron.Event
	acks   []any
	counts map[string]int
}

// New returns a correlator grouping anomalies that open within window of
// each other; source is the Source of the incident events.
func New(window time.Duration, source string) *Correlator {
	return NewWithHold(window, 24*time.Hour, source)
}

// NewWithHold is New with the longest time (event time) an anomaly's
// records are held unacknowledged: past it they are released, so one
// incident that never ends cannot stop the events topic's commits; the
// correlator keeps its state, but a new owner of the partition would not
// see the incident.
func NewWithHold(window, maxHold time.Duration, source string) *Correlator {
	return &Correlator{window: window.Milliseconds(), maxHold: maxHold.Milliseconds(), source: source, signals: map[string]*signal{},
		pending: map[string]*group{}, open: map[string]*incident{}, counts: map[string]int{}}
}

// Take returns the incident events produced since the last Take and the
// references (given to Observe) of the events that no longer matter: the
// caller may acknowledge their records once the incident events are
// published. The returned slices are the caller's.
func (c *Correlator) Take() (events []novacron.Event, acks []any) {
	events, acks = c.events, c.acks
	c.events, c.acks = nil, nil
	return events, acks
}

// Groups returns how many groups were classified, by cause ("" for none).
func (c *Correlator) Groups() map[string]int { return c.counts }

// Held returns how many anomalies the correlator holds (pending or in an
// open incident).
func (c *Correlator) Held() int { return len(c.signals) }

// OpenIncidents returns the number of open incidents.
func (c *Correlator) OpenIncidents() int { return len(c.open) }

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

// Observe folds one event of the events topic in. ref identifies its
// record; it comes back from Take once the record may be acknowledged.
func (c *Correlator) Observe(e novacron.Event, ref any) {
	t := e.Time.UnixMilli()
	c.Advance(e.Time)
	switch e.Kind {
	case novacron.EventAnomalyOpened:
		id := str(e.Details, "anomaly_id")
		if id == "" || c.signals[id] != nil {
			c.acks = append(c.acks, ref)
			return
		}
		s := &signal{id: id, vm: e.VMID, host: e.Host, metric: str(e.Details, "metric"), start: t, open: true,
			value: num(e.Details, "value"), expect: num(e.Details, "expected"), comp: str(e.Details, "component"), refs: []any{ref}}
		s.up = s.value > s.expect
		c.add(s)
	case novacron.EventForecastBreach:
		id := str(e.Details, "breach_id")
		switch str(e.Details, "state") {
		case "predicted":
			if id == "" || c.signals[id] != nil || e.VMID == "" {
				c.acks = append(c.acks, ref)
				return
			}
			s := &signal{id: id, vm: e.VMID, host: e.Host, metric: str(e.Details, "metric"), start: t, open: true,
				up: true, breach: true, refs: []any{ref}}
			if c.open["vm/"+s.vm] == nil && s.metric != metricVMDisk && s.metric != metricVMMemory {
				// A breach alone opens only a disk-filling or memory-leak
				// group: the forecasts learn the daily profile, so a
				// predicted memory or disk breach is a trend, but CPU
				// saturation alone has no cause of its own.
				c.acks = append(c.acks, ref)
				return
			}
			c.add(s)
		case "cleared":
			c.close(id, t, ref)
		default:
			c.acks = append(c.acks, ref)
		}
	case novacron.EventAnomalyClosed:
		c.close(str(e.Details, "anomaly_id"), t, ref)
	default:
		c.acks = append(c.acks, ref)
	}
}

// add joins a new signal to an open incident it belongs to, else to its
// host's pending group.
func (c *Correlator) add(s *signal) {
	c.signals[s.id] = s
	if s.vm != "" {
		if in := c.open["vm/"+s.vm]; in != nil {
			c.join(in, s)
			return
		}
	}
	if in := c.open["host/"+s.host]; in != nil && (s.metric == metricVMSteal || s.metric == metricVMCPU || strings.HasPrefix(s.metric, hostPrefix)) {
		c.join(in, s)
		return
	}
	g := c.pending[s.host]
	if g == nil {
		g = &group{first: s.start}
		c.pending[s.host] = g
	}
	g.sigs = append(g.sigs, s)
}

func (c *Correlator) join(in *incident, s *signal) {
	s.inc = in
	in.members = append(in.members, s)
	in.open++
	in.updates++
	c.events = append(c.events, c.event(in, "updated", s.start))
}

func (c *Correlator) close(id string, t int64, ref any) {
	s := c.signals[id]
	if s == nil || !s.open {
		c.acks = append(c.acks, ref)
		return
	}
	s.open = false
	s.refs = append(s.refs, ref)
	in := s.inc
	if in == nil {
		return // pending: classified with the rest of its group
	}
	in.open--
	if in.open == 0 {
		c.finish(in, t)
	}
}

// finish closes an incident and releases its members.
func (c *Correlator) finish(in *incident, t int64) {
	c.events = append(c.events, c.event(in, StateClosed, t))
	delete(c.open, in.key())
	for _, m := range in.members {
		c.acks = append(c.acks, m.refs...)
		delete(c.signals, m.id)
	}
}

// Advance moves the event-time clock to t (never back) and classifies the
// groups whose window has passed.
func (c *Correlator) Advance(t time.Time) {
	ms := t.UnixMilli()
	if ms <= c.now {
		return
	}
	c.now = ms
	if c.maxHold > 0 && ms-c.swept >= 60_000 {
		c.swept = ms
		for _, s := range c.signals {
			if len(s.refs) > 0 && ms-s.start > c.maxHold {
				c.acks = append(c.acks, s.refs...)
				s.refs = nil
			}
		}
	}
	var ready []string
	for h, g := range c.pending {
		if ms-g.first >= c.window {
			ready = append(ready, h)
		}
	}
	sort.Strings(ready)
	for _, h := range ready {
		g := c.pending[h]
		delete(c.pending, h)
		c.classify(h, g)
	}
}

// Flush classifies every pending group now, whatever its age (end of a
// replay, tests).
func (c *Correlator) Flush() {
	hosts := make([]string, 0, len(c.pending))
	for h := range c.pending {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		g := c.pending[h]
		delete(c.pending, h)
		c.classify(h, g)
	}
}

// classify turns a group into incidents: host contention when steal rose
// on two VMs or more, else one incident per VM whose anomalies have a
// probable cause. Host-level anomalies support the first incident of
// their host.
func (c *Correlator) classify(host string, g *group) {
	byVM := map[string][]*signal{}
	var hostSigs []*signal
	stealUp := map[string]bool{}
	for _, s := range g.sigs {
		if s.vm == "" {
			hostSigs = append(hostSigs, s)
			continue
		}
		byVM[s.vm] = append(byVM[s.vm], s)
		if s.metric == metricVMSteal && s.up {
			stealUp[s.vm] = true
		}
	}
	var made []*incident
	if len(stealUp) >= 2 {
		in := &incident{cause: CauseHostContention, host: host}
		for _, s := range g.sigs {
			if s.vm == "" || stealUp[s.vm] || s.metric == metricVMCPU {
				in.members = append(in.members, s)
			}
		}
		made = append(made, in)
	} else {
		vms := make([]string, 0, len(byVM))
		for vm := range byVM {
			vms = append(vms, vm)
		}
		sort.Strings(vms)
		for _, vm := range vms {
			cause := vmCause(byVM[vm])
			c.counts[cause]++
			if cause == "" {
				continue
			}
			if c.open["vm/"+vm] != nil {
				continue // a straggler group; its members are released
			}
			made = append(made, &incident{cause: cause, host: host, vm: vm, members: byVM[vm]})
		}
		if len(made) > 0 {
			made[0].members = append(made[0].members, hostSigs...)
		}
	}
	if len(made) > 0 && made[0].cause == CauseHostContention {
		c.counts[CauseHostContention]++
	}
	inIncident := map[*signal]bool{}
	for _, in := range made {
		slices.SortStableFunc(in.members, func(a, b *signal) int {
			if a.start != b.start {
				return int(a.start - b.start)
			}
			return strings.Compare(a.id, b.id)
		})
		in.start = in.members[0].start
		in.id = IncidentID(in.key(), in.start)
		c.open[in.key()] = in
		last := in.start
		for _, m := range in.members {
			m.inc = in
			inIncident[m] = true
			if m.open {
				in.open++
			}
			last = max(last, m.start)
		}
		c.events = append(c.events, c.event(in, "opened", in.start))
		if in.open == 0 {
			c.finish(in, max(last, c.now))
		}
	}
	for _, s := range g.sigs {
		if !inIncident[s] {
			c.acks = append(c.acks, s.refs...)
			delete(c.signals, s.id)
		}
	}
}

// Magnitudes a CPU anomaly needs to count as a runaway (rise of the
// usage ratio above its expected value) or as going idle (value at most
// this fraction of the expected one).
const (
	runawayRise  = 0.25
	idleFraction = 0.5
)

// vmCause classifies one VM's anomalies of a group; "" when they look
// like an ordinary change of workload.
func vmCause(sigs []*signal) string {
	var cpuUp, cpuDown, cpuOther, memUp, diskUp, ioUp, ioDown, io, other bool
	for _, s := range sigs {
		switch {
		case s.metric == metricVMDisk && s.up:
			diskUp = true
		case s.metric == metricVMCPU:
			// Only large moves: a runaway pins the CPU, an idle VM
			// drops to a fraction of its usual use; smaller moves are
			// the daily shape of a workload.
			if s.up && s.value-s.expect >= runawayRise {
				cpuUp = true
			} else if !s.up && s.value <= idleFraction*s.expect {
				cpuDown = true
			} else {
				cpuOther = true
			}
		case s.metric == metricVMMemory:
			// A leak climbs out of the band; a step to a new level
			// (shift, level) is the workload changing phase.
			if s.up && s.comp != "shift" && s.comp != "level" {
				memUp = true
			}
		case isIO(s.metric):
			io = true
			if s.up {
				ioUp = true
			} else {
				ioDown = true
			}
		case s.metric == metricVMSteal:
		default:
			other = true
		}
	}
	_ = other
	switch {
	case diskUp:
		return CauseDiskFilling
	case cpuDown && ioDown && !ioUp:
		return CauseVMIdle
	case cpuUp && !io:
		return CauseVMRunaway
	case memUp && !cpuUp && !cpuDown && !cpuOther && !io:
		return CauseMemoryLeak
	}
	return ""
}

// IncidentID returns the ID of the incident of scope ("vm/<vm_id>" or
// "host/<host>") whose first anomaly opened at t (ms): "incident-" and 16
// hex digits.
func IncidentID(scope string, t int64) string {
	h := fnv.New64a()
	h.Write([]byte(scope))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t))
	h.Write(b[:])
	return fmt.Sprintf("incident-%016x", h.Sum64())
}

func (c *Correlator) event(in *incident, what string, t int64) novacron.Event {
	ids := make([]string, 0, len(in.members))
	vmSet, metricSet := map[string]bool{}, map[string]bool{}
	for _, m := range in.members {
		ids = append(ids, m.id)
		if m.vm != "" {
			vmSet[m.vm] = true
		}
		metricSet[m.metric] = true
	}
	vms, metrics := sortedKeys(vmSet), sortedKeys(metricSet)
	state := StateOpen
	e := novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		Kind:          novacron.EventIncident,
		Time:          time.UnixMilli(t).UTC(),
		Source:        c.source,
		VMID:          in.vm,
		Host:          in.host,
		Severity:      "warning",
		Evidence:      evidence(in),
	}
	switch what {
	case "opened":
		e.ID = in.id + "-opened"
	case "updated":
		e.ID = fmt.Sprintf("%s-updated-%d", in.id, in.updates)
	default:
		e.ID, e.Severity, state = in.id+"-closed", "info", StateClosed
	}
	e.Summary = summary(in, vms, state)
	e.Details = map[string]any{
		"incident_id": in.id,
		"state":       state,
		"cause":       in.cause,
		"members":     ids,
		"vms":         vms,
		"metrics":     metrics,
		"opened_at":   time.UnixMilli(in.start).UTC().Format(time.RFC3339),
		"explanation": explanation(in, vms),
	}
	if state == StateClosed {
		e.Details["duration_seconds"] = float64(t-in.start) / 1000
	}
	return e
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func summary(in *incident, vms []string, state string) string {
	var s string
	switch in.cause {
	case CauseHostContention:
		s = fmt.Sprintf("host contention on %s: CPU steal rose together on %d VMs", in.host, len(vms))
	case CauseVMRunaway:
		s = "runaway CPU on " + in.vm
	case CauseMemoryLeak:
		s = "suspected memory leak on " + in.vm
	case CauseDiskFilling:
		s = "disk filling on " + in.vm
	case CauseVMIdle:
		s = in.vm + " went idle"
	}
	if state == StateClosed {
		s += " (closed)"
	}
	return s
}

func explanation(in *incident, vms []string) string {
	switch in.cause {
	case CauseHostContention:
		return fmt.Sprintf("CPU steal rose at the same time on %s, all on host %s: something outside these VMs competes for the host's CPUs (a noisy neighbour or an overcommitted host)",
			strings.Join(vms, ", "), in.host)
	case CauseVMRunaway:
		return "CPU use rose far above its baseline while disk and network traffic did not: a process is probably spinning"
	case CauseMemoryLeak:
		return "memory use rose above its baseline with no change in CPU or I/O to explain it"
	case CauseDiskFilling:
		return "disk usage rose above its baseline or is forecast to reach its capacity threshold"
	case CauseVMIdle:
		return "CPU fell together with disk or network traffic: the VM's workload stopped"
	}
	return ""
}

func evidence(in *incident) string {
	if in.vm == "" {
		return `rate(novacron_vm_cpu_steal_seconds_total{host="` + in.host + `"}[5m])`
	}
	sel := `{vm_id="` + in.vm + `"}`
	switch in.cause {
	case CauseVMRunaway:
		return "novacron_vm_cpu_usage_ratio" + sel + " or rate(novacron_vm_network_receive_bytes_total" + sel + "[5m])"
	case CauseMemoryLeak:
		return "novacron_vm_memory_usage_ratio" + sel
	case CauseDiskFilling:
		return "novacron_vm_disk_usage_ratio" + sel + ` or {__name__="novacron_vm_disk_usage_ratio:forecast",vm_id="` + in.vm + `"}`
	default:
		return "novacron_vm_cpu_usage_ratio" + sel + " or rate(novacron_vm_disk_read_bytes_total" + sel + "[5m]) or rate(novacron_vm_network_receive_bytes_total" + sel + "[5m])"
	}
}

// Source is the Source of incident events.
const Source = "correlate"

// Config configures the correlation of anomalies into incidents. YAML
// keys are snake_case.
type Config struct {
	// Enabled runs the correlator beside the analytics stage. Default true.
	Enabled bool `yaml:"enabled"`
	// Group is the consumer group on the events topic. Default
	// "novacron-correlate"; must not be empty.
	Group string `yaml:"group"`
	// Window is how close in time anomalies must open to be grouped, and
	// how long a group waits (in event time) before it is classified.
	// Default 5m; positive.
	Window time.Duration `yaml:"window"`
	// MaxHold is how long (event time) the records of an anomaly in an
	// open incident stay unacknowledged, so that a new owner of the
	// partition rebuilds the incident; past it they are acknowledged and
	// the incident lives on only in this process. Default 24h; positive.
	MaxHold time.Duration `yaml:"max_hold"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Enabled: true, Group: "novacron-correlate", Window: 5 * time.Minute, MaxHold: 24 * time.Hour}
}
