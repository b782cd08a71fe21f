// Package tfcontract holds the contract test between the Terraform module
// in terraform/ and the Go code it deploys: the index names the session
// store queries, the EventBridge pattern the decoder accepts, the IAM
// actions behind every AWS SDK call the binaries make, the queue's
// visibility timeout against the streamer's longest hold, the redrive
// policy, the Lambda event source mapping, and canonical formatting. It has
// no code outside its tests; `go test ./internal/tfcontract` runs it (and
// `make test` with everything else).
package tfcontract
