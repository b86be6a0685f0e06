package core

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		-time.Second: 1, 0: 1, time.Millisecond: 1, time.Second: 1,
		time.Second + time.Millisecond: 2, 29*time.Second + 1: 30, 30 * time.Second: 30,
	} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func TestIsNoAnswer(t *testing.T) {
	noAnswer := map[codes.Code]bool{
		codes.Unavailable: true, codes.DeadlineExceeded: true, codes.Canceled: true,
		codes.Unknown: true, codes.Internal: true, codes.Unimplemented: true, codes.DataLoss: true,
	}
	for c := codes.OK + 1; c <= codes.Unauthenticated; c++ {
		if got := IsNoAnswer(status.Error(c, "x")); got != noAnswer[c] {
			t.Errorf("IsNoAnswer(%v) = %v, want %v", c, got, noAnswer[c])
		}
	}
	if !IsNoAnswer(errPlain{}) {
		t.Errorf("a non-status error is an answer")
	}
}

type errPlain struct{}

func (errPlain) Error() string { return "plain" }
