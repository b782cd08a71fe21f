// Package store is a fixture for the SDK call scanner: a direct call with no
// IAM mapping, and an operation an SDK helper makes.
package store

import (
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Get names dynamodb.GetItemInput under another package name.
func Get() {
	_ = &ddb.GetItemInput{}
	_ = stscreds.NewAssumeRoleProvider
}
