// Command app is a fixture for the SDK call scanner: it calls through the
// store package it imports.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"example.com/fixture/store"
)

type queue interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
}

func main() {
	var q queue
	_ = q
	store.Get()
}
