// Package corpus generates deterministic, realistic CloudTrail STS traffic
// together with the Sentinel session table that explains it and, for every
// event, the verdict the classifier must reach (DESIGN.md "Verdicts").
//
// It is a test helper: integration tests, the backfill test, the demo and
// load tests feed the same corpus through whichever intake they exercise
// (EventBridge envelopes on SQS, SNS, S3 trail archives, LookupEvents fakes,
// local files) and compare the findings with [Corpus.Expected].
//
// # Determinism
//
// [Generate] draws every random choice from one PCG source seeded from
// [Config.Seed]: the same Config gives byte-identical records, sessions and
// renderings. Renderers derive their own identifiers (envelope ids, SNS
// message ids, archive file names) by hashing their input.
//
// # Timing guarantees
//
// Every event time is a whole second, and at least [Margin] away from every
// boundary its verdict depends on: a session's started_at, expires_at and
// revocation time, and Now - Retention. A classifier run with any clock skew
// below Margin therefore reaches exactly [Event.Expected]. In-scope events
// lie in [Now-Window, Now-MinAge], except unverifiable ones, which are placed
// one to two days before Now-Retention whatever Window says (they must be
// older than the store keeps sessions). Size a backfill's --since with
// [Corpus.Span].
//
// # Semantics encoded
//
// SourceIdentity is read from responseElements.sourceIdentity, else
// requestParameters.sourceIdentity, else
// userIdentity.sessionContext.sourceIdentity. A session matches by exact
// SourceIdentity first; only when none does, by user and time (sessions of
// raw users whose sessions.SanitizeUser equals the SourceIdentity's user,
// with StartedAt-skew <= t <= ExpiresAt+skew). A denied call (errorCode
// AccessDenied) that would otherwise have been tracked is expected tracked;
// otherwise it is expected denied_attempt.
package corpus
