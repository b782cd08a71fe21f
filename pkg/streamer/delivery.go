package streamer

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/cenkalti/backoff/v5"

	"github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
	"github.com/sessionwatch/sessionwatch/pkg/sink"
	"github.com/sessionwatch/sessionwatch/pkg/verdictlog"
)

// delivery is one received message and the state of its processing. One
// goroutine owns it at a time: a worker, the timer heap or the acker.
type delivery struct {
	id       string // SQS MessageId
	handle   string // receipt handle of this receive
	body     string
	receives int // ApproximateReceiveCount, 0 when not reported
	received time.Time

	decoded bool
	items   []item
	out     []pending // findings some sink has not accepted yet
	// entries are the verdict log lines of the items settled (when the
	// engine logs verdicts).
	entries []verdictlog.Entry

	bo *backoff.ExponentialBackOff // set on the first failure

	// Owned by the tracker (under its lock).
	deadline time.Time // visibility deadline as last set
	tracked  bool
	// Owned by the scheduler (under its lock).
	wake  time.Time
	index int // in the heap; -1 when not in it
}

type itemState uint8

const (
	stateClassify itemState = iota // not classified yet (or the store failed)
	stateRecheck                   // orphaned: re-check at until
	stateNotFinal                  // the session replica cannot answer yet: classify at until
	stateDone
)

// item is one event of a delivery: the message's own, or a record of a log
// object.
type item struct {
	ev    *cloudtrail.Event
	state itemState
	until time.Time
	// waited: the item was held for the session replica (its verdict is
	// counted as a confirmation).
	waited bool
}

// pending is a finding and the sinks that have not accepted it yet.
type pending struct {
	finding sink.Finding
	left    []bool // by sink index
}

func newDelivery(m types.Message, now time.Time) *delivery {
	d := &delivery{received: now, index: -1}
	if m.MessageId != nil {
		d.id = *m.MessageId
	}
	if m.ReceiptHandle != nil {
		d.handle = *m.ReceiptHandle
	}
	if m.Body != nil {
		d.body = *m.Body
	}
	if v, ok := m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; ok {
		d.receives, _ = strconv.Atoi(v)
	}
	return d
}
