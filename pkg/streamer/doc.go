// Package streamer consumes CloudTrail STS events from an SQS queue,
// classifies them and delivers the findings to every sink, at least once
// (DESIGN.md "Delivery semantics").
//
// # Life of a message
//
// A poller long-polls the queue (20 s, up to 10 messages) once it holds an
// in-flight slot for every message it asks for, so that a full pipeline makes
// receiving wait instead of memory grow. Each message becomes a delivery that
// one worker at a time advances:
//
//  1. decode once (cloudtrail.Decoder); an S3 notification has its log
//     objects fetched and their in-scope records kept;
//  2. classify every event; an orphaned verdict is held until
//     --orphan-grace after the event and then classified again with a
//     fresh store read before anything is emitted;
//  3. write the findings to every sink, and remember which sink has not
//     accepted which finding;
//  4. resolve: delete the message (batched: 10 receipt handles or one
//     second) once every finding was accepted by every sink.
//
// A delivery that must wait (an orphan re-check, a retry after a store, sink
// or S3 failure) goes onto a timer heap, not a sleeping worker, so holding
// it blocks no other work; the heartbeat keeps extending its visibility past
// half the timeout meanwhile. Retries back off exponentially; a delivery
// still failing after RetryHold is released with its next back-off as
// visibility timeout, for this or another replica to take again.
//
// Undecodable messages are counted and forgotten (neither deleted nor
// released) so that the queue's redrive policy moves them to the DLQ after
// maxReceiveCount receives. Rejected envelopes and out-of-scope events are
// counted and deleted unclassified.
//
// # Shutdown
//
// When the context given to Run ends, the pollers stop receiving, held
// deliveries are released (visibility 0) at once, the workers finish what
// they are working on until the drain deadline, everything still in flight is
// released, pending deletes are flushed and the sinks closed, all within
// Config.ShutdownTimeout. The "streamer stopped" log line counts every
// message released so ("released").
package streamer
