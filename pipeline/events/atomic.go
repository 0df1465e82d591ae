package events

import "sync/atomic"

type atomicInt = atomic.Int64
