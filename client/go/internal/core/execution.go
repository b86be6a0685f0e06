package core

import (
	"context"
	"sync"
	"time"

	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Execution is the lease of one attempt while its handler runs. Heartbeats
// renew it until Finish or Release. One handler owns it; Finish and Release
// may be called from another goroutine than Begin, not concurrently.
type Execution struct {
	core  *Core
	req   Request // Tenant, Key, Route
	token uint64

	stop     chan struct{}
	stopped  sync.WaitGroup
	stopOnce sync.Once
	done     bool
}

func (c *Core) newExecution(req Request, token uint64) *Execution {
	e := &Execution{
		core:  c,
		req:   Request{Tenant: req.Tenant, Key: req.Key, Route: req.Route},
		token: token,
		stop:  make(chan struct{}),
	}
	e.stopped.Add(1)
	go e.heartbeats()
	return e
}

// FencingToken is the token of this attempt's lease.
func (e *Execution) FencingToken() uint64 { return e.token }

// heartbeats renews the lease every HeartbeatInterval until stopped, or
// until the lease is found gone.
func (e *Execution) heartbeats() {
	defer e.stopped.Done()
	t := time.NewTicker(e.core.cfg.HeartbeatInterval)
	defer t.Stop()
	// Stopped through e.stop, not by any request's cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		_, err := e.core.keys.Heartbeat(ctx, &idemkeypb.HeartbeatRequest{
			Tenant:       e.req.Tenant,
			Key:          e.req.Key,
			FencingToken: e.token,
			Lease:        durationpb.New(e.core.cfg.Lease),
		})
		// A lease that is gone (taken over, finished) needs no more beats; a
		// transient error is retried at the next beat.
		switch status.Code(err) {
		case codes.Aborted, codes.NotFound:
			if ctx.Err() == nil && e.core.cfg.Observer != nil {
				e.core.cfg.Observer.OnEvent(idemkey.Event{Kind: idemkey.EventLeaseLost, Tenant: e.req.Tenant, Elapsed: time.Since(start), ServiceErr: err})
			}
			return
		case codes.FailedPrecondition:
			return
		}
	}
}

func (e *Execution) stopHeartbeats() {
	e.stopOnce.Do(func() { close(e.stop) })
	e.stopped.Wait()
}

// Finish stores resp for replays, or releases the key when its status is
// not final. A response too large to store is stored without its body
// (then without its headers), flagged body_omitted: a retry never runs the
// handler again. The error is the key service's (ABORTED when the lease was
// lost); the app's client gets the handler's response either way. ctx's
// values are used, not its cancellation: the handler has run.
func (e *Execution) Finish(ctx context.Context, resp *idemkeypb.StoredResponse) error {
	if e.done {
		return nil
	}
	if e.core.cfg.NotFinal[resp.GetStatusCode()] {
		return e.Release(ctx)
	}
	e.done = true
	e.stopHeartbeats()
	start := time.Now()
	omitted, err := e.complete(detached{ctx}, resp)
	if err != nil {
		// Not released: the handler ran, so a retry must not run it again
		// before the lease lapses.
		kind := idemkey.EventFinishFailed
		if c := status.Code(err); c == codes.Aborted || c == codes.NotFound {
			kind = idemkey.EventLeaseLost
		}
		e.notify(kind, time.Since(start), err)
		return err
	}
	kind := idemkey.EventStored
	if omitted {
		kind = idemkey.EventBodyOmitted
	}
	e.notify(kind, time.Since(start), nil)
	return nil
}

// complete stores resp; on RESOURCE_EXHAUSTED (too large for the service or
// its receive limit) again without the body, then with the status alone.
func (e *Execution) complete(ctx context.Context, resp *idemkeypb.StoredResponse) (omitted bool, err error) {
	req := &idemkeypb.CompleteRequest{Tenant: e.req.Tenant, Key: e.req.Key, FencingToken: e.token, Response: resp}
	for step := 0; ; step++ {
		_, err = e.core.keys.Complete(ctx, req)
		if status.Code(err) != codes.ResourceExhausted || step == 2 {
			return omitted, err
		}
		smaller := &idemkeypb.StoredResponse{StatusCode: resp.GetStatusCode(), BodyOmitted: true}
		if step == 0 {
			smaller.Headers = resp.GetHeaders()
		}
		req.Response = smaller
		omitted = true
	}
}

// Release forgets the reservation so that a retry runs the handler again:
// for a handler that failed (panicked) before doing anything that must not
// happen twice. Calling it after Finish does nothing.
func (e *Execution) Release(ctx context.Context) error {
	if e.done {
		return nil
	}
	e.done = true
	e.stopHeartbeats()
	start := time.Now()
	_, err := e.core.keys.Release(detached{ctx}, &idemkeypb.ReleaseRequest{Tenant: e.req.Tenant, Key: e.req.Key, FencingToken: e.token})
	e.notify(idemkey.EventReleased, time.Since(start), err)
	return err
}

func (e *Execution) notify(kind idemkey.EventKind, elapsed time.Duration, err error) {
	if e.core.cfg.Observer == nil {
		return
	}
	e.core.cfg.Observer.OnEvent(idemkey.Event{Kind: kind, Tenant: e.req.Tenant, Route: e.req.Route, Elapsed: elapsed, ServiceErr: err})
}
