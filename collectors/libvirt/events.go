package libvirt

import (
	"context"
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// ensureEvents keeps a subscription to the host's domain lifecycle
// events on a connection of its own, redialing it when it broke. Events
// are turned into novacron.Event and handed to the collector. Events that
// happen while it is down are lost; the inventory catches up by polling.
func (h *host) ensureEvents(ctx context.Context) {
	if !h.cfg.Events {
		return
	}
	if h.evClient != nil {
		select {
		case <-h.evClient.Disconnected():
			h.cancelSub()
			h.evClient.Close()
			h.evClient, h.cancelSub = nil, nil
		default:
			return
		}
	}
	c, err := conn.Dial(ctx, h.target)
	if err != nil {
		return // tried again next cycle
	}
	subCtx, cancel := context.WithCancel(context.Background())
	var ch <-chan libvirt.DomainEventLifecycleMsg
	err = c.Do(ctx, func() error {
		var err error
		ch, err = c.LifecycleEvents(subCtx)
		return err
	})
	if err != nil {
		cancel()
		c.Close()
		h.log.Warn("libvirt lifecycle events unavailable on this host; inventory still follows from polling", "err", err)
		return
	}
	h.evClient, h.cancelSub = c, cancel
	name := h.name
	go func() {
		for msg := range ch {
			h.markStale(msg.Dom.UUID)
			if ev, ok := lifecycleEvent(name, msg, h.now()); ok {
				h.events(ev)
			}
		}
	}()
}

// lifecycle event names: what happened, and the VM's state afterwards.
var lifecycleNames = map[int32]struct {
	what  string
	state novacron.PowerState
}{
	int32(libvirt.DomainEventStarted):     {"started", novacron.PowerRunning},
	int32(libvirt.DomainEventSuspended):   {"suspended", novacron.PowerSuspended},
	int32(libvirt.DomainEventResumed):     {"resumed", novacron.PowerRunning},
	int32(libvirt.DomainEventStopped):     {"stopped", novacron.PowerStopped},
	int32(libvirt.DomainEventCrashed):     {"crashed", novacron.PowerCrashed},
	int32(libvirt.DomainEventPmsuspended): {"suspended", novacron.PowerSuspended},
	int32(libvirt.DomainEventDefined):     {"defined", ""},
	int32(libvirt.DomainEventUndefined):   {"undefined", ""},
}

var startedReasons = []string{"booted", "migrated", "restored", "from_snapshot", "wakeup", "recreated"}
var stoppedReasons = []string{"shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from_snapshot", "recreated"}
var suspendedReasons = []string{"paused", "migrated", "io_error", "watchdog", "restored", "from_snapshot", "api_error", "postcopy", "postcopy_failed"}

func reason(reasons []string, detail int32) string {
	if detail >= 0 && int(detail) < len(reasons) {
		return reasons[detail]
	}
	return fmt.Sprintf("detail_%d", detail)
}

// lifecycleEvent turns a libvirt lifecycle callback into a NovaCron event.
// A domain stopped with reason "crashed" is reported as crashed, and a
// domain started or stopped by a migration as migrated (in or out). Events
// NovaCron does not publish (defined, undefined, shutdown in progress)
// return false.
func lifecycleEvent(hostName string, msg libvirt.DomainEventLifecycleMsg, now time.Time) (novacron.Event, bool) {
	n, ok := lifecycleNames[msg.Event]
	if !ok || n.state == "" {
		return novacron.Event{}, false
	}
	what, why, state := n.what, "", n.state
	switch libvirt.DomainEventType(msg.Event) {
	case libvirt.DomainEventStarted:
		why = reason(startedReasons, msg.Detail)
		if msg.Detail == int32(libvirt.DomainEventStartedMigrated) {
			what = "migrated"
		}
	case libvirt.DomainEventStopped:
		why = reason(stoppedReasons, msg.Detail)
		switch msg.Detail {
		case int32(libvirt.DomainEventStoppedCrashed), int32(libvirt.DomainEventStoppedFailed):
			what, state = "crashed", novacron.PowerCrashed
		case int32(libvirt.DomainEventStoppedMigrated):
			what = "migrated_away"
		}
	case libvirt.DomainEventSuspended:
		why = reason(suspendedReasons, msg.Detail)
		if msg.Detail == int32(libvirt.DomainEventSuspendedMigrated) {
			// A pause as part of a live migration: the start on the
			// destination and the stop here tell the story.
			return novacron.Event{}, false
		}
	case libvirt.DomainEventCrashed:
		why = "crashed"
	}
	id := uuidString(msg.Dom.UUID)
	severity := "info"
	if what == "crashed" {
		severity = "warning"
	}
	details := map[string]any{"event": what, "reason": why, "to_state": string(state), "name": msg.Dom.Name}
	return novacron.Event{
		SchemaVersion: novacron.EventSchemaVersion,
		ID:            fmt.Sprintf("%s/%s/%s/%s/%d", Provider, hostName, id, what, now.UnixNano()),
		Kind:          novacron.EventVMLifecycle,
		Time:          now,
		Source:        Provider,
		VMID:          id,
		Host:          hostName,
		Labels:        map[string]string{"provider": Provider, "host": hostName, "vm": msg.Dom.Name},
		Summary:       fmt.Sprintf("vm %s %s on %s (%s)", msg.Dom.Name, what, hostName, why),
		Severity:      severity,
		Evidence:      fmt.Sprintf(`novacron_vm_up{vm_id=%q}`, id),
		Details:       details,
	}, true
}
