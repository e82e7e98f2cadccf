package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tagpipe/tagpipe/broker/acl"
	"github.com/tagpipe/tagpipe/broker/groups"
	"github.com/tagpipe/tagpipe/broker/quota"
	"github.com/tagpipe/tagpipe/broker/storage"
	"github.com/tagpipe/tagpipe/internal/fsutil"
	"github.com/tagpipe/tagpipe/internal/logging"
)

// Options configure a Broker. The zero value of a field means the value DefaultOptions
// gives it unless the field says otherwise.
type Options struct {
	// Dir holds topics.json and one directory per partition (<topic>-<partition>).
	Dir string
	// Listen is the Kafka listener, host:port; "127.0.0.1:0" picks a free port (see Addr).
	// Used when Listeners is empty: one PLAINTEXT listener.
	Listen string
	// AdvertisedHost / AdvertisedPort are what Metadata and DescribeCluster tell clients to
	// connect to; empty / 0 means the listener's actual host / port. With Listen only.
	AdvertisedHost string
	AdvertisedPort int
	// Listeners are the broker's listeners (Kafka's listeners and advertised.listeners);
	// empty means one PLAINTEXT listener on Listen with the advertised pair above.
	// Metadata, FindCoordinator and DescribeCluster answer each client with the
	// advertised address of the listener it connected to.
	Listeners []Listener
	// TLS is the certificate of the SSL and SASL_SSL listeners (listeners.go).
	TLS TLSOptions
	// SASL are the mechanisms and users of the SASL_PLAINTEXT and SASL_SSL listeners
	// (sasl.go).
	SASL SASLOptions
	// Authorizer turns ACLs on (authorize.go, broker/acl); the zero value is none:
	// every client may do everything.
	Authorizer AuthorizerOptions
	// NodeID is this broker's id.
	NodeID int32
	// ClusterID is reported in Metadata/DescribeCluster; empty means one generated on the
	// first start and kept in Dir/cluster_id.
	ClusterID string
	// AutoCreateTopics creates unknown topics on Metadata (when the client allows it) and
	// Produce, with DefaultPartitions partitions.
	AutoCreateTopics  bool
	DefaultPartitions int32
	// Topic defaults (Kafka's log.retention.ms, log.retention.bytes, log.segment.bytes,
	// log.roll.ms, message.max.bytes). -1 = unlimited for the retention pair.
	RetentionMS int64
	// CompressionType is the topics' default compression.type (Kafka's broker-level
	// compression.type): producer (default), uncompressed, gzip, snappy, lz4 or zstd.
	CompressionType string
	RetentionBytes  int64
	SegmentBytes    int64
	SegmentMS       int64
	MaxMessageBytes int32
	// Flush is the storage flush policy for every partition.
	Flush storage.FlushPolicy
	// RetentionCheckInterval is how often retention runs in the background; <0 disables
	// the background loop (tests call EnforceRetention).
	RetentionCheckInterval time.Duration
	// CleanerBackoff is how often the log cleaner looks for compacted partitions dirty
	// enough to clean (log.cleaner.backoff.ms); <0 disables the background loop (tests
	// call CompactLogs).
	CleanerBackoff time.Duration
	// MaxPartitions caps a topic's partition count (CreateTopics, CreatePartitions).
	MaxPartitions int32
	// MaxRequestBytes refuses larger request frames before allocating them (Kafka's
	// socket.request.max.bytes).
	MaxRequestBytes int32
	// IdleTimeout closes connections silent for this long (connections.max.idle.ms); 0 = never.
	IdleTimeout time.Duration
	// MaxConnections bounds the open connections of all listeners together (Kafka's
	// max.connections): at the limit, accepting waits until one closes. 0 = unlimited.
	// (connection_quotas.go)
	MaxConnections int
	// MaxConnectionsPerIP bounds the open connections from one client ip (Kafka's
	// max.connections.per.ip): one more is closed at once. 0 = unlimited.
	MaxConnectionsPerIP int
	// MaxConnectionsPerIPOverrides are per-host limits that replace MaxConnectionsPerIP
	// (max.connections.per.ip.overrides): an IP address or a host name, resolved at New;
	// 0 refuses every connection from it.
	MaxConnectionsPerIPOverrides map[string]int
	// MaxConnectionCreationRate bounds the new connections per second of the whole
	// broker, all listeners together (Kafka's broker-level max.connection.creation.rate),
	// measured over the quota windows: over it, accepting waits. 0 = unlimited.
	MaxConnectionCreationRate int
	// TransactionMaxTimeout is the largest transaction.timeout.ms a transactional
	// producer may ask for (transaction.max.timeout.ms); larger gets
	// INVALID_TRANSACTION_TIMEOUT.
	TransactionMaxTimeout time.Duration
	// TransactionAbortInterval is how often transactions past their timeout are aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms); <0 disables the
	// background check.
	TransactionAbortInterval time.Duration
	// TransactionalIDExpiration forgets a transactional id whose last transaction ended
	// (or that never began one) this long ago (transactional.id.expiration.ms, 7 days);
	// <0 = never. Checked every TransactionAbortInterval.
	TransactionalIDExpiration time.Duration
	// Quotas configure the client quotas' measurement (broker/quota): Kafka's
	// quota.window.num and quota.window.size.seconds. The quotas themselves are set by
	// AlterClientQuotas and kept in Dir/client_quotas.json. Its Now, when nil, is
	// Options.Now; it also times the requests for request_percentage.
	Quotas quota.Options
	// Groups configures the consumer-group coordinator; its Dir, Sync, Now, Logger and
	// Mirror come from the fields here. Zero values mean groups.DefaultOptions().
	Groups groups.Options
	// MaxIncrementalFetchSessionCacheSlots bounds the fetch sessions (KIP-227) the broker
	// keeps (Kafka's max.incremental.fetch.session.cache.slots, 1000); 0 creates none, so
	// every consumer sends full fetch requests (fetch_session.go).
	MaxIncrementalFetchSessionCacheSlots int
	// OffsetsTopicPartitions is the partition count __consumer_offsets is created with
	// (offsets.topic.num.partitions, 50); an existing topic keeps its own.
	OffsetsTopicPartitions int32
	// Now is the clock for retention and segment rolling; nil = time.Now.
	Now func() time.Time
	// Registry receives the broker's metrics; nil = metrics are not exported.
	Registry *prometheus.Registry
	// Logger; nil = slog.Default(). The broker logs through its loggers "broker" and
	// "groups", whose levels (and the root's) BROKER_LOGGER configs show and change: of
	// the process's logging.Levels when Logger came from them (tagpipe's logger does),
	// else of Levels of the broker's own over Logger's handler.
	Logger *slog.Logger
}

// DefaultOptions are Kafka's defaults for a single node listening on 127.0.0.1:9092.
func DefaultOptions() Options {
	return Options{
		Dir:                       "tagpipe-data/broker",
		Listen:                    "127.0.0.1:9092",
		AutoCreateTopics:          true,
		DefaultPartitions:         1,
		RetentionMS:               7 * 24 * 3600 * 1000,
		CompressionType:           "producer",
		RetentionBytes:            -1,
		SegmentBytes:              1 << 30,
		SegmentMS:                 7 * 24 * 3600 * 1000,
		MaxMessageBytes:           1048588,
		Flush:                     storage.FlushPolicy{Mode: "os"},
		RetentionCheckInterval:    5 * time.Minute,
		CleanerBackoff:            15 * time.Second,
		MaxRequestBytes:           100 << 20,
		MaxPartitions:             10000,
		Groups:                    groups.DefaultOptions(),
		OffsetsTopicPartitions:    50,
		TransactionMaxTimeout:     15 * time.Minute,
		TransactionAbortInterval:  10 * time.Second,
		TransactionalIDExpiration: 7 * 24 * time.Hour,
		IdleTimeout:               10 * time.Minute,

		MaxIncrementalFetchSessionCacheSlots: 1000,
	}
}

// Broker is a single-node Kafka broker. It is a lifecycle.Component.
type Broker struct {
	opts    Options
	log     *slog.Logger
	levels  *logging.Levels // the loggers of BROKER_LOGGER configs
	now     func() time.Time
	metrics *metrics

	listeners []*listener     // in Options.Listeners order; set by Start
	tlsCfg    *tls.Config     // for the TLS listeners; nil without one
	sasl      *saslAuth       // for the SASL listeners; nil without one
	acl       *acl.Authorizer // nil with Authorizer.Mode none
	clusterID string

	groups        *groups.Coordinator
	txns          *txnCoordinator    // transactions (txn.go)
	quotas        *quota.Manager     // client quotas (quota.go); no quota until Start opens the store
	connQuotas    *connQuotas        // connection limits and ip quotas on accept (connection_quotas.go)
	fetchSessions *fetchSessionCache // KIP-227 fetch sessions (fetch_session.go)

	// mu guards topics and the topics.json file; see locks.md.
	mu     sync.RWMutex
	topics map[string]*topic
	// topicsUnsynced: some partition is marked unsynced (topics.go); guarded by mu.
	topicsUnsynced bool
	// deleting: topics out of the registry whose partition directories are still being
	// removed, each with a channel closed when they are gone; guarded by mu. Creating
	// one of these names again waits for it (topics.go).
	deleting map[string]chan struct{}

	connMu sync.Mutex
	conns  map[*conn]struct{}

	frames framePool // large request buffers, shared by the connections

	// pidMu guards the producer id block [pidNext, pidLimit) (22_init_producer_id.go).
	pidMu    sync.Mutex
	pidNext  int64
	pidLimit int64

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// New validates opts and builds a broker; it opens nothing until Start.
func New(opts Options) (*Broker, error) {
	def := DefaultOptions()
	if opts.Dir == "" {
		return nil, errors.New("broker: Options.Dir must be set")
	}
	if opts.Listen == "" {
		opts.Listen = def.Listen
	}
	if opts.DefaultPartitions <= 0 {
		opts.DefaultPartitions = def.DefaultPartitions
	}
	if opts.CompressionType == "" {
		opts.CompressionType = def.CompressionType
	}
	if _, ok := storage.ParseCompression(opts.CompressionType); !ok {
		return nil, fmt.Errorf("broker: compression type %q: want one of %s", opts.CompressionType, strings.Join(storage.CompressionNames(), ", "))
	}
	if opts.RetentionMS == 0 {
		opts.RetentionMS = def.RetentionMS
	}
	if opts.RetentionBytes == 0 {
		opts.RetentionBytes = def.RetentionBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = def.SegmentBytes
	}
	if opts.SegmentMS <= 0 {
		opts.SegmentMS = def.SegmentMS
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = def.MaxMessageBytes
	}
	if opts.Flush.Mode == "" {
		opts.Flush = def.Flush
	}
	if opts.CleanerBackoff == 0 {
		opts.CleanerBackoff = def.CleanerBackoff
	}
	if opts.RetentionCheckInterval == 0 {
		opts.RetentionCheckInterval = def.RetentionCheckInterval
	}
	if opts.MaxPartitions <= 0 {
		opts.MaxPartitions = def.MaxPartitions
	}
	if opts.OffsetsTopicPartitions <= 0 {
		opts.OffsetsTopicPartitions = def.OffsetsTopicPartitions
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = def.MaxRequestBytes
	}
	if opts.TransactionMaxTimeout <= 0 {
		opts.TransactionMaxTimeout = def.TransactionMaxTimeout
	}
	if opts.TransactionAbortInterval == 0 {
		opts.TransactionAbortInterval = def.TransactionAbortInterval
	}
	if opts.TransactionalIDExpiration == 0 {
		opts.TransactionalIDExpiration = def.TransactionalIDExpiration
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// Loggers whose levels BROKER_LOGGER configs show and change: those of the process
	// when Logger came from its logging.Levels, else the broker's own.
	opts.Logger = logging.Adopt(opts.Logger)
	switch opts.Authorizer.Mode {
	case "", AuthorizerNone:
		opts.Authorizer.Mode = AuthorizerNone
	case AuthorizerACL:
	default:
		return nil, fmt.Errorf("broker: authorizer %q: want %s or %s", opts.Authorizer.Mode, AuthorizerNone, AuthorizerACL)
	}
	if err := checkListeners(&opts); err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	var sasl *saslAuth
	for _, l := range opts.Listeners {
		var err error
		if l.tls() && tlsCfg == nil {
			if tlsCfg, err = serverTLSConfig(opts.TLS); err != nil {
				return nil, err
			}
		}
		if l.sasl() && sasl == nil {
			if sasl, err = newSASLAuth(opts.SASL); err != nil {
				return nil, err
			}
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	b := &Broker{
		opts:   opts,
		log:    logging.Named(opts.Logger, "broker").With("component", "broker"),
		levels: logging.LevelsOf(opts.Logger),
		now:    now,
		topics: map[string]*topic{},
		conns:  map[*conn]struct{}{},
		stop:   make(chan struct{}),
		tlsCfg: tlsCfg,
		sasl:   sasl,
	}
	qopts := opts.Quotas
	if qopts.Now == nil {
		qopts.Now = opts.Now
	}
	b.quotas = quota.NewManager(qopts)
	var err error
	if b.connQuotas, err = newConnQuotas(b, &b.opts); err != nil {
		return nil, err
	}
	b.fetchSessions = newFetchSessionCache(opts.MaxIncrementalFetchSessionCacheSlots, now)
	b.metrics = newMetrics(opts.Registry, b)
	return b, nil
}

// Name implements lifecycle.Component.
func (b *Broker) Name() string { return "broker" }

// Start loads the topics, recovers every partition log, starts listening and returns.
func (b *Broker) Start(ctx context.Context) error {
	if err := fsutil.MkdirAll(b.opts.Dir); err != nil {
		return fmt.Errorf("cannot create broker dir %q: %w", b.opts.Dir, err)
	}
	if err := b.loadClusterID(); err != nil {
		return err
	}
	if err := b.loadProducerIDs(); err != nil {
		return err
	}
	if b.sasl.scramEnabled() {
		shadowed, err := b.sasl.loadStored(filepath.Join(b.opts.Dir, scramFile))
		if err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		for _, u := range shadowed {
			b.log.Warn("stored SCRAM credentials not used: the user is in broker.sasl_users, whose password wins", "user", u)
		}
		if len(b.sasl.configured) == 0 && len(*b.sasl.stored.Load()) == 0 {
			b.log.Warn("no SASL user yet: none is configured (broker.sasl_users) or stored; add one with AlterUserScramCredentials (tagpipe users scram) on another listener")
		}
	}
	if err := b.quotas.Open(filepath.Join(b.opts.Dir, quota.FileName)); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.openAuthorizer(filepath.Join(b.opts.Dir, acl.FileName)); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := b.loadTopics(); err != nil {
		b.closeLogs()
		return err
	}
	if err := b.ensureOffsetsTopic(); err != nil {
		b.closeLogs()
		return err
	}
	// The coordinator's commit log is Dir/__consumer_offsets/offsets.log (FORMAT.md); the
	// topic's partitions are Dir/__consumer_offsets-N, as Kafka names them.
	gopts := b.opts.Groups
	gopts.Dir = filepath.Join(b.opts.Dir, offsetsTopic)
	gopts.Sync = b.opts.Flush.Mode == "always"
	gopts.Now = b.opts.Now
	gopts.Logger = logging.Named(b.opts.Logger, "groups")
	gopts.Mirror = b.mirrorGroupRecords
	gopts.Topics = b.groupTopics
	g, err := groups.New(gopts)
	if err != nil {
		b.closeLogs()
		return fmt.Errorf("cannot open the group coordinator: %w", err)
	}
	b.groups = g
	if err := b.reconcileOffsetsTopic(); err != nil {
		// offsets.log holds the offsets: serve them, and try again at the next start.
		b.log.Error("cannot reconcile __consumer_offsets with the group coordinator", "err", err)
	}
	if b.txns, err = openTxnCoordinator(b); err != nil {
		b.closeLogs()
		_ = b.groups.Close()
		return fmt.Errorf("cannot open the transaction coordinator: %w", err)
	}
	if err := b.listen(ctx); err != nil {
		b.closeLogs()
		_ = b.groups.Close()
		_ = b.txns.close()
		return err
	}
	ntopics := len(b.topics) // before connections can create topics
	for _, l := range b.listeners {
		b.wg.Add(1)
		go b.acceptLoop(l)
	}
	if b.opts.RetentionCheckInterval > 0 {
		b.wg.Add(1)
		go b.every(b.opts.RetentionCheckInterval, func() {
			if _, err := b.EnforceRetention(); err != nil {
				b.log.Warn("retention failed", "err", err)
			}
		})
	}
	if b.opts.TransactionAbortInterval > 0 {
		b.wg.Add(1)
		go b.every(b.opts.TransactionAbortInterval, b.txns.sweep)
	}
	if b.opts.CleanerBackoff > 0 {
		b.wg.Add(1)
		go b.every(b.opts.CleanerBackoff, func() {
			if _, err := b.CompactLogs(); err != nil {
				b.log.Warn("log cleaner failed", "err", err)
			}
		})
	}
	for _, l := range b.listeners {
		b.log.Info("broker listening", "listener", l.Name, "security_protocol", l.SecurityProtocol, "addr", l.ln.Addr().String(),
			"advertised", net.JoinHostPort(l.advHost, strconv.Itoa(int(l.advPort))))
	}
	b.log.Info("broker started", "dir", b.opts.Dir, "topics", ntopics)
	return nil
}

// Addr is the first listener's address (useful with port 0); empty before Start.
func (b *Broker) Addr() string {
	if len(b.listeners) == 0 {
		return ""
	}
	return b.listeners[0].ln.Addr().String()
}

// Stop closes the listener and every connection, waits for their goroutines and closes
// the partition logs (flushing them). Safe to call twice and after a failed Start.
func (b *Broker) Stop(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		close(b.stop)
		b.closeListeners()
		b.connQuotas.stop()
		b.connMu.Lock()
		for c := range b.conns {
			c.close()
		}
		b.connMu.Unlock()
		done := make(chan struct{})
		go func() { b.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("broker stop: %w", ctx.Err())
			<-done // connections are closed; handlers return promptly
		}
		if b.txns != nil {
			if cerr := b.txns.close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		// The coordinator first: it appends to __consumer_offsets until it is closed.
		if b.groups != nil {
			if cerr := b.groups.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
		if cerr := b.closeLogs(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		b.metrics.unregister()
	})
	return err
}

// Close is Stop with no deadline.
func (b *Broker) Close() error { return b.Stop(context.Background()) }

func (b *Broker) closeLogs() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	// A log's Close syncs its files and writes its recovery point and clean-shutdown
	// marker (several fsyncs): the logs close side by side, so a broker with many
	// partitions (__consumer_offsets has 50) stops in the time of a few.
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, closeParallelism)
	)
	for _, t := range b.topics {
		for _, p := range t.parts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				p.appendMu.Lock()
				defer p.appendMu.Unlock()
				if err := p.log.Close(); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("cannot close %s-%d: %w", t.name, p.index, err))
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeParallelism bounds the partition logs closed at once.
const closeParallelism = 16

func (b *Broker) acceptLoop(l *listener) {
	defer b.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			select {
			case <-b.stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// Temporary failures (EMFILE…): back off instead of spinning.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			b.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-b.stop:
				return
			}
		}
		delay = 0
		ip := remoteIP(nc)
		if err := b.connQuotas.inc(ip); err != nil {
			b.connQuotas.refuse(l, nc, err)
			if err == errConnStopped {
				return
			}
			continue
		}
		c := newConn(b, l, nc)
		b.connMu.Lock()
		select {
		case <-b.stop:
			b.connMu.Unlock()
			_ = nc.Close()
			b.connQuotas.dec(ip)
			return
		default:
		}
		b.conns[c] = struct{}{}
		b.connMu.Unlock()
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.serve()
			b.connMu.Lock()
			delete(b.conns, c)
			b.connMu.Unlock()
			b.connQuotas.dec(ip)
		}()
	}
}

// every runs fn every interval until the broker stops (retention, the log cleaner).
func (b *Broker) every(interval time.Duration, fn func()) {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			fn()
		}
	}
}

// CompactLogs runs the log cleaner over every partition of the compacted topics
// (cleanup.policy with compact) whose dirty part has reached min.cleanable.dirty.ratio,
// and returns how many records it removed. The background loop calls it every
// CleanerBackoff; tests and tools may call it directly.
func (b *Broker) CompactLogs() (int64, error) {
	var errs []error
	var removed int64
	for _, p := range b.allPartitions() {
		res, ran, err := p.log.CompactIfDirty()
		if err != nil && !errors.Is(err, storage.ErrClosed) { // closed: its topic is being deleted
			errs = append(errs, fmt.Errorf("cannot compact %s-%d: %w", p.topic, p.index, err))
		}
		if ran && res.RecordsRemoved > 0 {
			removed += res.RecordsRemoved
			b.log.Info("log cleaner compacted partition", "topic", p.topic, "partition", p.index,
				"segments", res.Segments, "records_removed", res.RecordsRemoved, "bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter)
		}
	}
	b.metrics.compactedRecords.Add(float64(removed))
	return removed, errors.Join(errs...)
}

// EnforceRetention applies every topic's retention.ms / retention.bytes now and returns
// how many segments were deleted. The background loop calls it every
// RetentionCheckInterval; tests and tools may call it directly.
func (b *Broker) EnforceRetention() (int, error) {
	var errs []error
	total := 0
	for _, p := range b.allPartitions() {
		n, err := p.log.EnforceRetention()
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot enforce retention on %s-%d: %w", p.topic, p.index, err))
		}
		total += n
	}
	if total > 0 {
		b.metrics.retentionDeleted.Add(float64(total))
		b.log.Info("retention deleted segments", "segments", total)
	}
	return total, errors.Join(errs...)
}
