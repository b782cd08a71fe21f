package sessions

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the part of the DynamoDB client the Store uses;
// *dynamodb.Client satisfies it.
type DynamoDBAPI interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Default index names: gsi-user is Sentinel's, gsi-source-identity is the one
// the Terraform module adds.
const (
	DefaultSourceIdentityIndex = "gsi-source-identity"
	DefaultUserIndex           = "gsi-user"
)

// StoreConfig says where the sessions are. Zero fields take their defaults.
type StoreConfig struct {
	// Table is the session table's name (required).
	Table string
	// SourceIdentityIndex is the GSI keyed by source_identity.
	SourceIdentityIndex string
	// UserIndex is the GSI keyed by user (and created_at).
	UserIndex string
	// PageSize caps the items read per Query or Scan page; 0 leaves it to
	// DynamoDB (1 MB pages). A small value spreads read capacity (and lets
	// tests exercise pagination).
	PageSize int32
}

// Validate reports a configuration the Store cannot use.
func (c StoreConfig) Validate() error {
	var errs []error
	if c.Table == "" {
		errs = append(errs, errors.New("table name is required"))
	}
	if c.PageSize < 0 {
		errs = append(errs, fmt.Errorf("page size %d is negative", c.PageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sessions: store config: %w", err)
	}
	return nil
}

func (c StoreConfig) withDefaults() StoreConfig {
	if c.SourceIdentityIndex == "" {
		c.SourceIdentityIndex = DefaultSourceIdentityIndex
	}
	if c.UserIndex == "" {
		c.UserIndex = DefaultUserIndex
	}
	return c
}

// Store reads sessions from the table, uncached. Every method reads all
// pages; an empty result with a nil error means nothing is recorded, and any
// failure to read (throttling, a missing table, the network) is an error.
type Store struct {
	client DynamoDBAPI
	cfg    StoreConfig
}

// NewStore returns a Store over client.
func NewStore(client DynamoDBAPI, cfg StoreConfig) (*Store, error) {
	if client == nil {
		return nil, errors.New("sessions: store: nil DynamoDB client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{client: client, cfg: cfg.withDefaults()}, nil
}

// BySourceIdentity returns the sessions recorded with exactly this
// SourceIdentity.
func (s *Store) BySourceIdentity(ctx context.Context, sourceIdentity string) ([]Session, error) {
	out, err := s.queryIndex(ctx, s.cfg.SourceIdentityIndex, AttrSourceIdentity, sourceIdentity)
	if err != nil {
		return nil, fmt.Errorf("sessions: query %s for source identity %q: %w", s.cfg.SourceIdentityIndex, sourceIdentity, err)
	}
	return out, nil
}

// ByUser returns every session of the raw (unsanitised) user name.
func (s *Store) ByUser(ctx context.Context, rawUser string) ([]Session, error) {
	out, err := s.queryIndex(ctx, s.cfg.UserIndex, AttrUser, rawUser)
	if err != nil {
		return nil, fmt.Errorf("sessions: query %s for user %q: %w", s.cfg.UserIndex, rawUser, err)
	}
	return out, nil
}

// queryIndex reads every page of an equality query on a GSI. GSIs do not
// support consistent reads, so none is asked for.
func (s *Store) queryIndex(ctx context.Context, index, attr, value string) ([]Session, error) {
	if value == "" {
		// DynamoDB rejects an empty key value; nothing can be stored under it.
		return nil, nil
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.cfg.Table),
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#k = :v"),
		ExpressionAttributeNames:  map[string]string{"#k": attr}, // "user" is a reserved word
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: value}},
	}
	if s.cfg.PageSize > 0 {
		in.Limit = aws.Int32(s.cfg.PageSize)
	}
	var out []Session
	pages := dynamodb.NewQueryPaginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, item := range page.Items {
			out = append(out, UnmarshalItem(item))
		}
	}
	return out, nil
}

// UserNames returns the distinct raw user names in the user index, sorted.
// It scans the whole index: call it periodically (the Directory does), never
// per event.
func (s *Store) UserNames(ctx context.Context) ([]string, error) {
	in := &dynamodb.ScanInput{
		TableName:                aws.String(s.cfg.Table),
		IndexName:                aws.String(s.cfg.UserIndex),
		ProjectionExpression:     aws.String("#u"),
		ExpressionAttributeNames: map[string]string{"#u": AttrUser},
	}
	if s.cfg.PageSize > 0 {
		in.Limit = aws.Int32(s.cfg.PageSize)
	}
	seen := map[string]bool{}
	pages := dynamodb.NewScanPaginator(s.client, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("sessions: scan %s for user names: %w", s.cfg.UserIndex, err)
		}
		for _, item := range page.Items {
			if v, ok := item[AttrUser].(*types.AttributeValueMemberS); ok && v.Value != "" {
				seen[v.Value] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
