package streamer

import (
	"context"
	"errors"
	"time"
)

// Processor runs messages that a driver received itself, the Lambda
// runtime's SQS event source mapping for one, through the Streamer's path:
// decode once, classify (an orphaned verdict is re-checked once the grace
// after its event has passed), deliver to every sink. It makes one pass per
// call and never touches the queue: no holding, retrying, visibility
// extension or delete. Its Disposition tells the driver whether the
// message is done or must come back.
//
// It is safe for concurrent use when the classifier and the sinks are (the
// ones sessionwatch builds are). The sinks stay the driver's to close.
type Processor struct {
	e engine
}

// Message is one queue message as its driver received it.
type Message struct {
	ID   string // the SQS MessageId, for the logs
	Body string
	// ReceiveCount is ApproximateReceiveCount, 0 when unknown (logs only).
	ReceiveCount int
}

// Disposition is what one pass made of a message.
type Disposition uint8

const (
	// Done: every finding the message produced was accepted by every
	// sink, or it produced none (tracked, rejected, out of scope). Delete
	// it.
	Done Disposition = iota
	// Held: an orphaned verdict waits for Config.OrphanGrace after its
	// event before it is re-checked. Redeliver the message after the grace.
	Held
	// Failed: the session store, an S3 fetch or a sink failed. Redeliver
	// the message; sinks that already accepted its findings get them again
	// with the same finding_id.
	Failed
	// Undecodable: no pass can read it. Leave it to the queue's redrive
	// policy, which moves it to the dead-letter queue.
	Undecodable
)

func (d Disposition) String() string {
	switch d {
	case Done:
		return "done"
	case Held:
		return "held"
	case Failed:
		return "failed"
	case Undecodable:
		return "undecodable"
	}
	return "unknown"
}

// NewProcessor checks cfg and builds a Processor. Only OrphanGrace and the
// retry settings of cfg apply (QueueURL may be empty); deps.Queue is not
// used.
func NewProcessor(cfg Config, deps Deps) (*Processor, error) {
	if err := cfg.validate(false); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if deps.VerdictLog != nil {
		return nil, errors.New("streamer: a Processor keeps no verdict log (it never deletes messages)")
	}
	e, err := newEngine(cfg, deps)
	if err != nil {
		return nil, err
	}
	return &Processor{e: e}, nil
}

// Process makes one pass over m. It returns once every sink has answered
// for every finding m produced, so a Done message's findings have left the
// process.
func (p *Processor) Process(ctx context.Context, m Message) Disposition {
	d := &delivery{id: m.ID, body: m.Body, receives: m.ReceiveCount, received: time.Now(), index: -1}
	p.e.m.received.Inc()
	o := p.e.processSafely(ctx, d)
	switch {
	case o.kind == outcomeAck:
		return Done
	case o.kind == outcomeForget:
		return Undecodable
	case o.failed:
		return Failed
	default:
		return Held
	}
}
