package streaming

// Topic ids (KIP-516): a topic deleted and recreated under the same name gets a new id,
// which is how the engine tells the new topic from the one it was reading when the new
// one already holds more records than the job's position (see planRanges).
//
// kafka-go (v0.4.51) cannot ask for them: its Metadata request stops at v8 and topic
// ids came with v10 (Kafka 2.8), and its Transport only sends the request types of its
// own protocol package. So the engine asks one broker itself (a bootstrap broker, or
// when none of them answers one of the cluster's brokers that the last Metadata
// response listed), over a
// connection kept for the purpose (kafkasec.Conn: TLS and SASL as the rest of the
// source): ApiVersions once per connection for the broker's Metadata versions, then one
// Metadata v10–v12 request (the source's topics, no auto creation) per call, encoded and
// decoded with franz-go's kmsg. A broker without Metadata v10 (Kafka before 2.8) gives no ids
// and the engine plans as it did before ids. Everything here is best effort: a call is
// bounded by topicIDTimeout, and a failure is logged and answered "unknown" (the
// engine goes on without ids), with no new attempt for topicIDBackoff.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

const (
	// topicIDTimeout bounds one call: dial, ApiVersions and Metadata.
	topicIDTimeout = 5 * time.Second
	// topicIDBackoff is how long a failed call keeps the next ones from trying.
	topicIDBackoff = 10 * time.Second
	// topicIDRecheck is how long a broker without topic ids is believed (an upgrade
	// shows after it).
	topicIDRecheck = 10 * time.Minute
	// Metadata versions with topic ids that the client speaks.
	minIDMetadata, maxIDMetadata = 10, 12
)

// errNoTopicIDs: the broker answers no Metadata v10+, so no topic ids.
var errNoTopicIDs = errors.New("the broker has no topic ids (Metadata v10+ not supported: Kafka before 2.8)")

// topicIDClient asks a bootstrap broker, or another broker of the cluster, for topic
// ids. Its methods are safe for
// concurrent use (calls are serialized).
type topicIDClient struct {
	brokers  []string
	security *kafkasec.Security
	clientID string
	log      *slog.Logger
	now      func() time.Time

	mu   sync.Mutex
	conn *kafkasec.Conn
	next int // index in brokers of the connection, or the next one to try
	// known are the cluster's other brokers (not in brokers) from the last Metadata
	// response: tried when no bootstrap broker answers.
	known   []string
	version int16 // Metadata version spoken on conn
	// skipUntil: no request before it (after a failure, or a broker without ids).
	skipUntil time.Time
	// noIDs: the last broker asked has no topic ids (logged once).
	noIDs bool
}

func newTopicIDClient(brokers []string, security *kafkasec.Security, clientID string) *topicIDClient {
	return &topicIDClient{
		brokers:  brokers,
		security: security,
		clientID: clientID,
		log:      slog.New(slog.DiscardHandler),
		now:      time.Now,
	}
}

// get returns the topic ids of topics that the broker knows, in Kafka's text form (as
// kafka-topics.sh prints them). It returns nil when they are unknown: the broker has
// none, the request failed (logged) or failed less than topicIDBackoff ago.
func (c *topicIDClient) get(ctx context.Context, topics []string) map[string]string {
	if len(topics) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Before(c.skipUntil) {
		return nil
	}
	ids, err := c.fetch(ctx, topics)
	switch {
	case errors.Is(err, errNoTopicIDs):
		c.skipUntil = c.now().Add(topicIDRecheck)
		if !c.noIDs {
			c.noIDs = true
			c.log.Info("no topic ids from the broker: a topic deleted and recreated is noticed only when it ends below the job's position", "err", err)
		}
		return nil
	case err != nil:
		c.skipUntil = c.now().Add(topicIDBackoff)
		if ctx.Err() == nil {
			c.log.Warn("cannot read topic ids; planning without them", "err", err, "retry_in", topicIDBackoff)
		}
		return nil
	}
	c.noIDs = false
	return ids
}

// fetch sends one Metadata request for topics, connecting first if need be.
func (c *topicIDClient) fetch(ctx context.Context, topics []string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, topicIDTimeout)
	defer cancel()
	reused := c.conn != nil
	if !reused {
		if err := c.dial(ctx); err != nil {
			return nil, err
		}
	}
	req := kmsg.NewPtrMetadataRequest()
	req.Version = c.version
	req.AllowAutoTopicCreation = false
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp := kmsg.NewPtrMetadataResponse()
	err := c.conn.RoundTrip(ctx, req, resp)
	if err != nil && reused && ctx.Err() == nil {
		// The broker may have closed the idle connection: one more try on a new one.
		c.closeConn()
		if err = c.dial(ctx); err == nil {
			req.Version = c.version
			resp = kmsg.NewPtrMetadataResponse()
			err = c.conn.RoundTrip(ctx, req, resp)
		}
	}
	if err != nil {
		c.closeConn()
		return nil, err
	}
	c.learn(resp.Brokers)
	ids := make(map[string]string, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.ErrorCode == 0 && t.Topic != nil && t.TopicID != [16]byte{} {
			ids[*t.Topic] = formatTopicID(t.TopicID)
		}
	}
	return ids, nil
}

// formatTopicID is Kafka's text form of a topic id (Uuid.toString: URL-safe base64,
// no padding).
func formatTopicID(id [16]byte) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// learn keeps the cluster's brokers of a Metadata response that are not bootstrap
// brokers.
func (c *topicIDClient) learn(brokers []kmsg.MetadataResponseBroker) {
	c.known = c.known[:0]
	for _, b := range brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		if !slices.Contains(c.brokers, addr) {
			c.known = append(c.known, addr)
		}
	}
}

// dial connects to the first bootstrap broker that answers (TLS and SASL done),
// starting with the last one used, else to the first of the other known brokers that
// does, and picks the Metadata version from its ApiVersions.
func (c *topicIDClient) dial(ctx context.Context) error {
	var errs []error
	try := func(addr string) (bool, error) {
		conn, err := c.security.Dial(ctx, addr, c.clientID)
		if err == nil {
			c.conn = conn
			if c.version, err = c.metadataVersion(ctx); err == nil {
				return true, nil
			}
			c.closeConn()
			if errors.Is(err, errNoTopicIDs) {
				return false, fmt.Errorf("%s: %w", addr, err)
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		return false, nil
	}
	for range c.brokers {
		if ok, err := try(c.brokers[c.next]); ok || err != nil {
			return err
		}
		c.next = (c.next + 1) % len(c.brokers)
	}
	for _, addr := range c.known {
		if ok, err := try(addr); ok || err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// metadataVersion asks the broker (ApiVersions v0, which every broker answers) for the
// highest Metadata version with topic ids that both sides speak.
func (c *topicIDClient) metadataVersion(ctx context.Context) (int16, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	resp := kmsg.NewPtrApiVersionsResponse()
	if err := c.conn.RoundTrip(ctx, req, resp); err != nil {
		return 0, err
	}
	if resp.ErrorCode != 0 {
		return 0, fmt.Errorf("ApiVersions: error code %d", resp.ErrorCode)
	}
	return pickMetadataVersion(resp.ApiKeys)
}

// pickMetadataVersion is the highest Metadata version in [minIDMetadata,
// maxIDMetadata] the broker's ApiVersions keys allow; errNoTopicIDs when none.
func pickMetadataVersion(keys []kmsg.ApiVersionsResponseApiKey) (int16, error) {
	for _, k := range keys {
		if k.ApiKey != kmsg.Metadata.Int16() {
			continue
		}
		v := min(k.MaxVersion, maxIDMetadata)
		if v < minIDMetadata || v < k.MinVersion {
			return 0, fmt.Errorf("%w (Metadata v%d-v%d)", errNoTopicIDs, k.MinVersion, k.MaxVersion)
		}
		return v, nil
	}
	return 0, fmt.Errorf("%w (no Metadata in ApiVersions)", errNoTopicIDs)
}

func (c *topicIDClient) closeConn() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *topicIDClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeConn()
}
