package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
)

// payload is one pre-encoded remote-write request.
type payload struct {
	body    []byte
	samples int64
}

// encodeRounds encodes rounds [from, to) of f as snappy WriteRequests of
// batchSeries series each, in round order, using every core (this is
// untimed set-up, so that the writers only send bytes).
func encodeRounds(f *fleet, from, to, batchSeries int) []payload {
	n := len(f.labels)
	perRound := (n + batchSeries - 1) / batchSeries
	out := make([]payload, (to-from)*perRound)
	f.prepareLabels()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var raw []byte
			for {
				k := int(next.Add(1) - 1)
				if k >= len(out) {
					return
				}
				r, b := from+k/perRound, k%perRound
				lo, hi := b*batchSeries, min((b+1)*batchSeries, n)
				raw = f.appendRequest(raw[:0], lo, hi, r)
				// s2's fast snappy-compatible encoder: this set-up is not
				// what is measured, so spend as little time on it as possible.
				out[k] = payload{body: s2.EncodeSnappy(nil, raw), samples: int64((hi - lo) * f.samplesPerSeries)}
			}
		})
	}
	wg.Wait()
	return out
}

// rawResult is what the raw VictoriaMetrics writers achieved.
type rawResult struct {
	Requests  int64
	Samples   int64
	Errors    int64
	Elapsed   time.Duration
	Exhausted bool // the pre-encoded requests ran out before the duration
}

// postAll sends payloads to url with the given number of concurrent
// writers, in order, until they run out or duration passes (0: no
// limit), and counts the samples of the requests answered 2xx.
func postAll(ctx context.Context, url string, payloads []payload, writers int, duration time.Duration, progress func(samples int64)) rawResult {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = writers
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()
	var (
		next, samples, requests, errs atomic.Int64
		wg                            sync.WaitGroup
	)
	start := time.Now()
	deadline := time.Time{}
	if duration > 0 {
		deadline = start.Add(duration)
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				if progress != nil {
					progress(samples.Load())
				}
			}
		}
	}()
	for range writers {
		wg.Go(func() {
			for ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
				k := next.Add(1) - 1
				if k >= int64(len(payloads)) {
					return
				}
				p := payloads[k]
				if err := post(ctx, client, url, p.body); err != nil {
					errs.Add(1)
					continue
				}
				requests.Add(1)
				samples.Add(p.samples)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	return rawResult{
		Requests: requests.Load(), Samples: samples.Load(), Errors: errs.Load(), Elapsed: elapsed,
		Exhausted: next.Load() >= int64(len(payloads)),
	}
}

func post(ctx context.Context, client *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	return nil
}
