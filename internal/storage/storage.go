package storage

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/novacron/novacron"
)

// Writer stores batches of series. Implementations are safe for concurrent
// use.
type Writer interface {
	// Write returns nil once every sample in batch is durably accepted by
	// the store (acknowledged by the remote receiver, or committed to the
	// embedded TSDB's write-ahead log). Write does not retain batch after it
	// returns. Errors marked with novacron.Permanent mean retrying the same
	// batch cannot succeed (the store rejected the data); every other error
	// is worth retrying. Writing a sample that is already stored with the
	// same timestamp and value succeeds, so batches can be re-delivered.
	Write(ctx context.Context, batch []novacron.Series) error
	// Ping checks that the store answers, for readiness probes.
	Ping(ctx context.Context) error
}

// EncodedWriter is implemented by Writers that can store a remote-write
// WriteRequest as it is encoded, without decoding it into series first
// (the remote-write client forwards it). The Sender uses it for batches
// given to EnqueueEncoded and decodes those batches for Writers without
// it.
type EncodedWriter interface {
	// WriteEncoded stores raw, a raw (not snappy-compressed) WriteRequest
	// of samples float samples that prw.ScanWriteRequest accepted as
	// plain; it is not checked again. Errors and retention follow
	// Writer.Write: raw is not retained after WriteEncoded returns.
	WriteEncoded(ctx context.Context, raw []byte, samples int) error
}

// WriterFunc adapts a function to Writer, with a Ping that always succeeds.
// It is meant for tests and small adapters.
type WriterFunc func(ctx context.Context, batch []novacron.Series) error

// Write calls f.
func (f WriterFunc) Write(ctx context.Context, batch []novacron.Series) error { return f(ctx, batch) }

// Ping returns nil.
func (f WriterFunc) Ping(context.Context) error { return nil }

// Settings is what code injects into storage components: never read from
// user configuration.
type Settings struct {
	// Logger receives the component's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the component's metrics; nil registers nothing.
	// Wrap it (prometheus.WrapRegistererWith) to run two senders in one
	// process.
	Registerer prometheus.Registerer
}

// LoggerOrDiscard returns s.Logger, or a logger that discards everything
// when it is nil.
func (s Settings) LoggerOrDiscard() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// ErrSenderClosed is returned by Sender.Enqueue once Shutdown has begun,
// and passed to the done callback of batches that Shutdown could not
// write before its deadline.
var ErrSenderClosed = errors.New("storage sender is shut down")
