package libvirt

import (
	"context"
	"fmt"
	"net/url"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/libvirt/conn"
)

// MigrateOptions tune one migration; zero values take the configuration's.
type MigrateOptions struct {
	// BandwidthMiBps caps the migration stream in MiB/s. 0: the
	// configured migration.bandwidth_mibps.
	BandwidthMiBps uint64
	// Timeout aborts the migration when it has not finished. 0: the
	// configured migration.timeout.
	Timeout time.Duration
	// Progress, when set, is called every migration.progress_interval
	// while the migration runs, from another goroutine.
	Progress func(MigrationProgress)
}

// MigrationProgress is a snapshot of a running migration job.
type MigrationProgress struct {
	// Elapsed is the time since the job started.
	Elapsed time.Duration
	// DataTotal, DataProcessed and DataRemaining are bytes of memory (and
	// disks, if copied) to transfer, transferred and left; 0 when unknown.
	DataTotal, DataProcessed, DataRemaining uint64
	// Active is false when no migration job runs.
	Active bool
}

// Migrate moves a VM to another configured host: live (peer-to-peer: the
// source host's daemon connects to the destination's) when it runs,
// offline (its definition only) when it is stopped. The VM ends defined on
// the destination and undefined on the source. Migrating to the host the
// VM runs on does nothing.
func (d *Driver) Migrate(ctx context.Context, id, host string) error {
	return d.MigrateWithOptions(ctx, id, host, MigrateOptions{})
}

// MigrateWithOptions is Migrate with a bandwidth cap, timeout and progress
// callback. When ctx is cancelled or the timeout passes, the migration is
// aborted, the VM keeps running on the source, and the error is
// EUNAVAILABLE.
func (d *Driver) MigrateWithOptions(ctx context.Context, id, host string, opts MigrateOptions) error {
	dest, ok := d.byName[host]
	if !ok {
		return novacron.Errorf(novacron.ENOTFOUND, "migrate vm %s: host %q is not configured (have %v)", id, host, d.Hosts())
	}
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	if l.h == dest {
		return nil
	}
	live := active(l.state)
	if l.state == stShutdown || l.state == stPMSuspended {
		return novacron.Errorf(novacron.ECONFLICT, "migrate vm %s: it is %s; retry when it runs or is off", id, powerState(l.state))
	}
	bw := opts.BandwidthMiBps
	if bw == 0 {
		bw = d.cfg.Migration.BandwidthMiBps
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = d.cfg.Migration.Timeout
	}
	dconn := dest.cfg.MigrationURI
	if dconn == "" {
		dconn = dest.cfg.URI
	}
	flags := libvirt.MigratePeer2peer | libvirt.MigratePersistDest | libvirt.MigrateUndefineSource
	if live {
		flags |= libvirt.MigrateLive | libvirt.MigrateAbortOnError
	} else {
		flags |= libvirt.MigrateOffline
	}
	if d.cfg.Migration.Unsafe {
		flags |= libvirt.MigrateUnsafe
	}
	var params []libvirt.TypedParam
	if bw > 0 {
		params = append(params, libvirt.TypedParam{Field: libvirt.MigrateParamBandwidth, Value: *libvirt.NewTypedParamValueUllong(bw)})
	}
	if a := dest.cfg.MigrationAddress; a != "" && live {
		params = append(params,
			libvirt.TypedParam{Field: libvirt.MigrateParamURI, Value: *libvirt.NewTypedParamValueString("tcp://" + hostForURI(a))},
			libvirt.TypedParam{Field: libvirt.MigrateParamListenAddress, Value: *libvirt.NewTypedParamValueString(a)})
	}

	cctx, cancel := d.callCtx(ctx)
	c, err := l.h.conn(cctx)
	cancel()
	if err != nil {
		return conn.Classify(err, "migrate vm %s", id)
	}
	d.log.Info("libvirt migration started", "vm_id", id, "from", l.h.cfg.Name, "to", host, "live", live, "bandwidth_mibps", bw)
	began := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := c.DomainMigratePerform3Params(l.dom, libvirt.OptString{dconn}, params, nil, flags)
		done <- err
	}()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(d.cfg.Migration.ProgressInterval)
	defer tick.Stop()
	abort := func(why string, cause error) error {
		aerr := d.do(context.WithoutCancel(ctx), l.h, func(c *conn.Client) error { return c.DomainAbortJob(l.dom) }, "abort migration")
		select {
		case <-done:
		case <-time.After(d.cfg.Timeout):
		}
		d.log.Warn("libvirt migration aborted", "vm_id", id, "to", host, "reason", why, "abort_err", aerr)
		return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: fmt.Sprintf("migrate vm %s to %s: %s; aborted, the VM stays on %s", id, host, why, l.h.cfg.Name), Err: cause}
	}
	for {
		select {
		case err := <-done:
			if err != nil {
				if errIs(err, libvirt.ErrOperationAborted) {
					return &novacron.Error{Code: novacron.EUNAVAILABLE, Message: fmt.Sprintf("migrate vm %s to %s: cancelled", id, host), Err: err}
				}
				return conn.Classify(err, "migrate vm %s to %s", id, host)
			}
			d.log.Info("libvirt migration finished", "vm_id", id, "to", host, "duration", time.Since(began))
			return nil
		case <-ctx.Done():
			return abort("request cancelled", ctx.Err())
		case <-deadline.C:
			return abort(fmt.Sprintf("not finished after %s", timeout), context.DeadlineExceeded)
		case <-tick.C:
			if opts.Progress != nil && live {
				if p, err := d.jobProgress(ctx, l); err == nil && p.Active {
					opts.Progress(p)
				}
			}
		}
	}
}

// hostForURI brackets an IPv6 address for use in a URI.
func hostForURI(a string) string {
	u := url.URL{Host: a}
	if u.Hostname() != a { // already bracketed or has a port
		return a
	}
	for _, r := range a {
		if r == ':' {
			return "[" + a + "]"
		}
	}
	return a
}

// MigrationProgress returns the progress of the VM's running migration;
// Active is false when none runs.
func (d *Driver) MigrationProgress(ctx context.Context, id string) (MigrationProgress, error) {
	l, err := d.locate(ctx, id)
	if err != nil {
		return MigrationProgress{}, err
	}
	return d.jobProgress(ctx, l)
}

func (d *Driver) jobProgress(ctx context.Context, l located) (MigrationProgress, error) {
	var p MigrationProgress
	err := d.do(ctx, l.h, func(c *conn.Client) error {
		typ, params, err := c.DomainGetJobStats(l.dom, 0)
		if err != nil {
			return err
		}
		p.Active = typ != 0 // VIR_DOMAIN_JOB_NONE
		for _, tp := range params {
			v, ok := tp.Value.I.(uint64)
			if !ok {
				continue
			}
			switch tp.Field {
			case "time_elapsed":
				p.Elapsed = time.Duration(v) * time.Millisecond
			case "data_total":
				p.DataTotal = v
			case "data_processed":
				p.DataProcessed = v
			case "data_remaining":
				p.DataRemaining = v
			}
		}
		return nil
	}, "vm %s: job stats", uuidString(l.dom.UUID))
	return p, err
}

// CancelMigration aborts the VM's running migration; the VM stays on its
// source host. With no migration running it does nothing.
func (d *Driver) CancelMigration(ctx context.Context, id string) error {
	l, err := d.locate(ctx, id)
	if err != nil {
		return err
	}
	err = d.do(ctx, l.h, func(c *conn.Client) error { return c.DomainAbortJob(l.dom) }, "cancel migration of vm %s", id)
	if novacron.ErrorCode(err) == novacron.ECONFLICT {
		return nil // no job
	}
	return err
}
