package core

import (
	"context"
	"time"
)

// detached keeps a context's values but not its deadline or cancellation:
// once the handler has run, its result is stored (or its key released) even
// when the app's client has gone away meanwhile.
type detached struct{ parent context.Context }

// Deadline reports no deadline.
func (d detached) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is never closed.
func (d detached) Done() <-chan struct{} { return nil }

// Err is always nil.
func (d detached) Err() error { return nil }

// Value is the parent's value.
func (d detached) Value(key interface{}) interface{} { return d.parent.Value(key) }
