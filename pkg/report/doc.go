// Package report turns a backfill's (or a findings file's) results into
// what people read: filters for a run, a terminal table and a
// self-contained HTML report with charts.
//
// The pieces, in the order a backfill uses them:
//
//   - Filter (NewFilter): --account, --role, --principal and --profile
//     patterns (Glob: '*' matches any run, ':' and '/' included). KeepEvent
//     runs before classification, so a dropped event costs no session
//     lookup; KeepResult runs after it (the profile is the matched
//     session's). Each counts what it dropped.
//   - Accumulator (NewAccumulator): Add for every classified event the
//     filters kept, tracked ones included, so per-day tracked rates are
//     exact, with the finding the sinks got (it is shown as is, never
//     rendered again). Safe for concurrent use by classification workers. It keeps
//     the MaxFindings most severe findings for display; every count stays
//     exact. For a findings file, ReadFindings and AddFinding (redeliveries
//     counted once; tracked rate "n/a", never estimated).
//   - Summary: the totals, per verdict, per day, top callers and roles, per
//     account and region.
//   - WriteTable: the table for a terminal (ColorEnabled decides on colour).
//   - WriteHTML: one HTML file, no external reference; charts are inline
//     SVG built here; every field from an event is escaped by html/template.
package report
