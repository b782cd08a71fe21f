package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/account"
	accounttypes "github.com/aws/aws-sdk-go-v2/service/account/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	ct "github.com/sessionwatch/sessionwatch/pkg/cloudtrail"
)

// LookupEvents limits: CloudTrail answers 2 calls a second per account and
// region, 50 events a call.
const (
	LookupCallsPerSecond = 2
	LookupPageSize       = 50
)

// AllRegions as the only region asks Account ListRegions for every region
// enabled in each account.
const AllRegions = "all"

// DefaultLookupConcurrency bounds the account and region workers running at
// once (each holds at most one page per event name).
const DefaultLookupConcurrency = 64

// DefaultRoleSessionName names the sessions of --assume-role-name.
const DefaultRoleSessionName = "sessionwatch-backfill"

// DefaultAccountLabel names the account of the configured credentials in
// checkpoints and summaries when no account list is given.
const DefaultAccountLabel = "default"

// LookupConfig configures a Lookup source.
type LookupConfig struct {
	// AWS is the base configuration: credentials, default region, retries.
	AWS aws.Config
	// Accounts to read, each through AssumeRoleName. Empty: the account of
	// the configured credentials, with no call to learn which it is.
	Accounts       []string
	AssumeRoleName string
	// RoleSessionName default DefaultRoleSessionName.
	RoleSessionName string
	// Regions to read; empty means AWS.Region; AllRegions means every
	// region enabled in the account (account:ListRegions).
	Regions []string
	// EventNames are queried one by one (LookupAttributes EventName).
	EventNames   []string
	Since, Until time.Time
	// Decoder applies the account allowlist and the scope check.
	Decoder *ct.Decoder
	// Checkpoint records each finished page; nil records nothing.
	Checkpoint *Checkpoint
	// Concurrency bounds the account and region workers running at once;
	// default DefaultLookupConcurrency.
	Concurrency int
	Log         zerolog.Logger
}

// Lookup reads CloudTrail LookupEvents: one worker per account and region,
// paced at LookupCallsPerSecond for all its calls (each retry included),
// one query per event name through the SDK paginator. Each page is handed
// on as it arrives, and the next is asked for only once the pipeline
// acknowledged it and the checkpoint holds it, so memory does not grow with
// the window and a killed run repeats at most the page in flight. A
// failing account (or region) is recorded in Stats and the others go on.
type Lookup struct {
	cfg   LookupConfig
	stats Stats
}

// NewLookup checks cfg and returns the source.
func NewLookup(cfg LookupConfig) (*Lookup, error) {
	if cfg.Decoder == nil {
		return nil, errors.New("lookup: nil decoder")
	}
	if len(cfg.EventNames) == 0 {
		return nil, errors.New("lookup: no event names")
	}
	if len(cfg.Accounts) > 0 && cfg.AssumeRoleName == "" {
		return nil, errors.New("lookup: reading several accounts needs a role name to assume in each")
	}
	if len(cfg.Regions) == 0 {
		if cfg.AWS.Region == "" {
			return nil, errors.New("lookup: no region given and none configured")
		}
		cfg.Regions = []string{cfg.AWS.Region}
	}
	if cfg.RoleSessionName == "" {
		cfg.RoleSessionName = DefaultRoleSessionName
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = DefaultLookupConcurrency
	}
	if !cfg.Since.Before(cfg.Until) {
		return nil, errors.New("lookup: empty window")
	}
	return &Lookup{cfg: cfg}, nil
}

// Stats reports calls, throttles, pages and failed accounts.
func (l *Lookup) Stats() *Stats { return &l.stats }

// pipelineError is an emit failure: it ends the run, unlike an account's.
type pipelineError struct{ err error }

func (e pipelineError) Error() string { return e.err.Error() }
func (e pipelineError) Unwrap() error { return e.err }

// Run reads every account and region.
func (l *Lookup) Run(ctx context.Context, emit Emit) error {
	accounts := l.cfg.Accounts
	if len(accounts) == 0 {
		accounts = []string{""}
	}
	sem := make(chan struct{}, l.cfg.Concurrency)
	var g errgroup.Group
	for _, acct := range accounts {
		g.Go(func() error { return l.account(ctx, acct, emit, sem) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// fail records a failed account or region, unless the run itself ended.
func (l *Lookup) fail(ctx context.Context, acct, region string, err error) error {
	var pe pipelineError
	if errors.As(err, &pe) {
		return pe.err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	label := acct
	if label == "" {
		label = DefaultAccountLabel
	}
	l.stats.Fail(Failure{Account: label, Region: region, Error: err.Error()})
	l.cfg.Log.Error().Err(err).Str("account", label).Str("region", region).Msg("account failed; the others go on")
	return nil
}

func (l *Lookup) account(ctx context.Context, acct string, emit Emit, sem chan struct{}) error {
	cfg := l.cfg.AWS.Copy()
	if acct != "" {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		arn := RoleARN(Partition(cfg.Region), acct, l.cfg.AssumeRoleName)
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(l.cfg.AWS), arn, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = l.cfg.RoleSessionName
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
		_, err := cfg.Credentials.Retrieve(ctx)
		<-sem
		if err != nil {
			return l.fail(ctx, acct, "", fmt.Errorf("assume %s: %w", arn, err))
		}
	}
	regions := l.cfg.Regions
	if len(regions) == 1 && regions[0] == AllRegions {
		var err error
		if regions, err = EnabledRegions(ctx, account.NewFromConfig(cfg)); err != nil {
			return l.fail(ctx, acct, "", fmt.Errorf("list enabled regions: %w", err))
		}
	}
	var g errgroup.Group
	for _, region := range regions {
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			defer func() { <-sem }()
			if err := l.region(ctx, cfg, acct, region, emit); err != nil {
				return l.fail(ctx, acct, region, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// region reads one account and region: its event-name queries run side by
// side, sharing one limiter.
func (l *Lookup) region(ctx context.Context, cfg aws.Config, acct, region string, emit Emit) error {
	limiter := rate.NewLimiter(LookupCallsPerSecond, 1)
	client := cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		o.Region = region
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			// Throttles are expected when others share the account's
			// limit: back off longer, and never run out of retry quota.
			so.MaxAttempts = 10
			so.RateLimiter = ratelimit.None
		})
		o.APIOptions = append(o.APIOptions, pace(limiter, &l.stats))
	})
	name := region
	if acct != "" {
		name = acct + " " + region
	}
	st := l.stats.NewStream(name)
	var (
		mu      sync.Mutex
		covered = make([]float64, len(l.cfg.EventNames))
	)
	report := func(i int, f float64) {
		mu.Lock()
		defer mu.Unlock()
		covered[i] = f
		var sum float64
		for _, c := range covered {
			sum += c
		}
		st.SetCovered(sum / float64(len(covered)))
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, eventName := range l.cfg.EventNames {
		g.Go(func() error {
			return l.query(gctx, client, acct, region, eventName, emit, st, func(f float64) { report(i, f) })
		})
	}
	err := g.Wait()
	if err == nil {
		st.Finish()
	}
	return err
}

// StreamKey names a LookupEvents stream in the checkpoint.
func StreamKey(acct, region, eventName string) string {
	if acct == "" {
		acct = DefaultAccountLabel
	}
	return acct + "/" + region + "/" + eventName
}

// query pages through one event name, newest first, from the checkpoint's
// position on.
func (l *Lookup) query(ctx context.Context, client cloudtrail.LookupEventsAPIClient, acct, region, eventName string,
	emit Emit, st *Stream, report func(float64)) error {
	key := StreamKey(acct, region, eventName)
	cp := l.cfg.Checkpoint
	pos := cp.Lookup(key)
	if pos.Done {
		report(1)
		return nil
	}
	since, until := l.cfg.Since, l.cfg.Until
	end := until
	if !pos.Oldest.IsZero() {
		end = pos.Oldest // LookupEvents' EndTime is inclusive
		report(windowCovered(since, until, end))
	}
	seen := make(map[string]bool, len(pos.IDsAtOldest))
	for _, id := range pos.IDsAtOldest {
		seen[id] = true
	}
	in := &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String(eventName)}},
		StartTime:        aws.Time(since),
		EndTime:          aws.Time(end),
	}
	pages := cloudtrail.NewLookupEventsPaginator(client, in, func(o *cloudtrail.LookupEventsPaginatorOptions) {
		o.Limit = LookupPageSize
		o.StopOnDuplicateToken = true
	})
	origin := "lookup " + key
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("LookupEvents %s: %w", eventName, err)
		}
		done := make(chan struct{})
		ack := NewAck(func() { close(done) })
		oldest, ids := pos.Oldest, pos.IDsAtOldest
		n := 0
		for _, e := range out.Events {
			id, t := aws.ToString(e.EventId), aws.ToTime(e.EventTime).UTC()
			if seen[id] {
				continue // read before the run stopped
			}
			switch {
			case oldest.IsZero() || t.Before(oldest):
				oldest, ids = t, []string{id}
			case t.Equal(oldest):
				ids = append(ids, id)
			}
			ev, err := ct.DecodeRecord([]byte(aws.ToString(e.CloudTrailEvent)))
			if err == nil {
				err = l.cfg.Decoder.CheckRecord(ev)
			}
			n++
			ack.Hold()
			if err := emit(ctx, Record{Event: ev, Err: err, Origin: origin, Pos: int(pos.Events) + n, Ack: ack}); err != nil {
				return pipelineError{err}
			}
		}
		ack.Close()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		pos.Oldest, pos.IDsAtOldest = oldest, ids
		pos.Pages++
		pos.Events += int64(n)
		if err := cp.Persist(cp.SetLookup(key, pos)); err != nil {
			return pipelineError{err}
		}
		l.stats.Units.Add(1)
		st.Pages.Add(1)
		st.Events.Add(int64(n))
		if !oldest.IsZero() {
			report(windowCovered(since, until, oldest))
		}
	}
	pos.Done = true
	report(1)
	if err := cp.Persist(cp.SetLookup(key, pos)); err != nil {
		return pipelineError{err}
	}
	return nil
}

// pace makes every LookupEvents attempt, retries included, wait for the
// account and region's limiter, and counts calls and throttles. It sits
// after the SDK's retry middleware, so a retry cannot jump the queue.
func pace(limiter *rate.Limiter, stats *Stats) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("sessionwatch.Pace",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if err := limiter.Wait(ctx); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				stats.APICalls.Add(1)
				out, md, err := next.HandleFinalize(ctx, in)
				if err != nil && retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary {
					stats.Throttles.Add(1)
				}
				return out, md, err
			}), "Retry", middleware.After)
	}
}

// EnabledRegions lists the regions enabled in the caller's account
// (account:ListRegions; opt-in regions count once enabled).
func EnabledRegions(ctx context.Context, client account.ListRegionsAPIClient) ([]string, error) {
	pages := account.NewListRegionsPaginator(client, &account.ListRegionsInput{
		RegionOptStatusContains: []accounttypes.RegionOptStatus{accounttypes.RegionOptStatusEnabled, accounttypes.RegionOptStatusEnabledByDefault},
	})
	var regions []string
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Regions {
			regions = append(regions, aws.ToString(r.RegionName))
		}
	}
	if len(regions) == 0 {
		return nil, errors.New("no enabled region")
	}
	return regions, nil
}

// OrganizationAccounts lists the active accounts of the caller's
// organization (organizations:ListAccounts, from the management or a
// delegated administrator account).
func OrganizationAccounts(ctx context.Context, client organizations.ListAccountsAPIClient) ([]string, error) {
	pages := organizations.NewListAccountsPaginator(client, &organizations.ListAccountsInput{})
	var ids []string
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range out.Accounts {
			active := a.State == orgtypes.AccountStateActive
			if a.State == "" {
				// Older answers carry only Status, retired since.
				active = a.Status == orgtypes.AccountStatusActive
			}
			if active {
				ids = append(ids, aws.ToString(a.Id))
			}
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no active account in the organization")
	}
	return ids, nil
}

// Partition returns the AWS partition of a region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	default:
		return "aws"
	}
}

// RoleARN is the ARN of role name in account.
func RoleARN(partition, account, name string) string {
	return "arn:" + partition + ":iam::" + account + ":role/" + name
}
