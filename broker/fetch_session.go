package broker

// Fetch sessions (KIP-227), as Kafka's FetchSession.scala (FetchManager, FetchSessionCache,
// FetchSession, CachedPartition).
//
// A Fetch v7+ with session epoch 0 (INITIAL) is a full fetch: it closes the session it
// names, if any, and its response creates a new session holding its partitions (their
// fetch offsets, max bytes, and the high watermark, last stable offset and log start
// offset just answered), whose id the response carries; the client's next epoch is 1.
// Epoch -1 (FINAL) is a full fetch that closes the named session and creates none
// (sessionless, id 0 in the answer). Any other epoch is an incremental fetch on the named
// session: unknown id → FETCH_SESSION_ID_NOT_FOUND, epoch not the session's →
// INVALID_FETCH_SESSION_EPOCH (both with no partitions). Otherwise the request's
// partitions are added or updated, its forgotten topics removed, the epoch advances, and
// every partition of the session is read from its cached fetch offset; the response
// leaves out the partitions with no records, no error and the same high watermark, last
// stable offset and log start offset as last answered, and moves the partitions that got
// records to the end of the session's order (Kafka's fairness rule). A session left
// empty by its forgotten topics is closed and the fetch is sessionless.
//
// The cache holds Options.MaxIncrementalFetchSessionCacheSlots sessions (Kafka's
// max.incremental.fetch.session.cache.slots, 1000; 0 turns sessions off: every full
// fetch is answered sessionless). Sessions are the broker's, not a connection's: a client
// may reconnect and go on with its session. When the cache is full a new session takes
// the slot of (Kafka's FetchSessionCache.tryEvict): the least recently used session if it
// was unused for more than fetchSessionEvictionAge (min.incremental.fetch.session.
// eviction.ms, 120 s); else the session with the fewest partitions among those a newcomer
// may evict — a follower's (ReplicaID >= 0, privileged) any session; a consumer's the
// sessions created more than fetchSessionEvictionAge ago — when the newcomer has more
// partitions (or is a follower and that one is not). Else no session is created: the
// full fetch is answered with session id 0 and the client goes on sessionless.
//
// Locks: fetchSessionCache.mu guards the map, each session's lastUsed and size; a
// session's mu guards its epoch and partitions. Neither is taken while holding the other.
// A Fetch below v7, or with epoch -1 and session id 0, takes neither.

import (
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchSessionEvictionAge is Kafka's min.incremental.fetch.session.eviction.ms.
const fetchSessionEvictionAge = 120 * time.Second

type fetchSessionCache struct {
	slots    int
	now      func() time.Time
	mu       sync.Mutex
	sessions map[int32]*fetchSession

	// metrics (Kafka's NumIncrementalFetchSessions, NumIncrementalFetchPartitionsCached,
	// IncrementalFetchSessionEvictionsPerSec) and the fetches by context.
	gauge      prometheus.Gauge
	partsGauge prometheus.Gauge
	evictions  prometheus.Counter
	fetches    *prometheus.CounterVec
	// The children of fetches, looked up once: a label lookup takes the vector's lock.
	fullFetches, incrementalFetches, sessionlessFetches, errorFetches prometheus.Counter
	parts                                                             int // partitions cached, for partsGauge
}

type fetchSession struct {
	id         int32
	privileged bool
	created    time.Time
	// Guarded by fetchSessionCache.mu.
	lastUsed time.Time
	size     int
	removed  bool

	mu    sync.Mutex
	epoch int32 // the epoch the next incremental fetch must carry
	parts []*cachedPartition
	index map[topicPartition]*cachedPartition
}

// cachedPartition is what the session remembers of one partition: the client's last
// fetch position and what the broker last answered for it.
type cachedPartition struct {
	topicPartition
	fetchOffset, clientLogStart int64
	maxBytes                    int32
	leaderEpoch, lastFetched    int32
	hwm, lso, logStart          int64
}

func newFetchSessionCache(slots int, now func() time.Time) *fetchSessionCache {
	fc := &fetchSessionCache{
		slots: slots, now: now, sessions: make(map[int32]*fetchSession),
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_fetch_sessions",
			Help: "Incremental fetch sessions cached (Kafka's NumIncrementalFetchSessions)."}),
		partsGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_broker_fetch_session_partitions",
			Help: "Partitions held by the cached fetch sessions (Kafka's NumIncrementalFetchPartitionsCached)."}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_broker_fetch_session_evictions_total",
			Help: "Fetch sessions evicted from a full cache to make room for a new one."}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_broker_fetch_session_requests_total",
			Help: "Fetch v7+ requests by session context: full (creating a session or trying to), incremental, sessionless (epoch -1 or a session emptied), error (unknown session or wrong epoch)."},
			[]string{"context"}),
	}
	fc.fullFetches = fc.fetches.WithLabelValues("full")
	fc.incrementalFetches = fc.fetches.WithLabelValues("incremental")
	fc.sessionlessFetches = fc.fetches.WithLabelValues("sessionless")
	fc.errorFetches = fc.fetches.WithLabelValues("error")
	return fc
}

func (fc *fetchSessionCache) collectors() []prometheus.Collector {
	return []prometheus.Collector{fc.gauge, fc.partsGauge, fc.evictions, fc.fetches}
}

// fetchContext is how one Fetch is answered with respect to sessions.
type fetchContext struct {
	// session is the session the request is incremental on, or nil.
	session *fetchSession
	// create: a full fetch whose answer creates a session (epoch 0, sessions on).
	create bool
	// errCode answers the request with no partitions (unknown session, wrong epoch).
	errCode int16
}

// newContext is Kafka's FetchManager.newContext. For an incremental fetch it rewrites
// req.Topics to the session's partitions (clones: req aliases the connection's buffer).
func (fc *fetchSessionCache) newContext(req *kmsg.FetchRequest) fetchContext {
	if req.SessionEpoch == 0 || req.SessionEpoch == -1 {
		if req.SessionID != 0 {
			fc.remove(req.SessionID)
		}
		if req.SessionEpoch == -1 || fc.slots <= 0 {
			fc.sessionlessFetches.Inc()
			return fetchContext{}
		}
		fc.fullFetches.Inc()
		return fetchContext{create: true}
	}
	fc.mu.Lock()
	s := fc.sessions[req.SessionID]
	fc.mu.Unlock()
	if s == nil {
		fc.errorFetches.Inc()
		return fetchContext{errCode: kerr.FetchSessionIDNotFound.Code}
	}
	s.mu.Lock()
	if s.epoch != req.SessionEpoch {
		s.mu.Unlock()
		fc.errorFetches.Inc()
		return fetchContext{errCode: kerr.InvalidFetchSessionEpoch.Code}
	}
	s.update(req)
	size := len(s.parts)
	if size > 0 {
		s.epoch = nextFetchEpoch(s.epoch)
		req.Topics = s.requestTopics(req.Topics[:0])
	}
	s.mu.Unlock()
	if size == 0 {
		fc.remove(s.id)
		fc.sessionlessFetches.Inc()
		return fetchContext{}
	}
	fc.touch(s, size)
	fc.incrementalFetches.Inc()
	return fetchContext{session: s}
}

// nextFetchEpoch is Kafka's FetchMetadata.nextEpoch.
func nextFetchEpoch(e int32) int32 {
	switch {
	case e < 0:
		return -1
	case e == 1<<31-1:
		return 1
	}
	return e + 1
}

// update applies an incremental request's partitions and forgotten topics.
func (s *fetchSession) update(req *kmsg.FetchRequest) {
	for i := range req.Topics {
		rt := &req.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			cp := s.index[topicPartition{rt.Topic, rp.Partition}]
			if cp == nil {
				cp = &cachedPartition{topicPartition: topicPartition{strings.Clone(rt.Topic), rp.Partition}, hwm: -1, lso: -1, logStart: -1}
				s.index[cp.topicPartition] = cp
				s.parts = append(s.parts, cp)
			}
			cp.setRequest(rp)
		}
	}
	if len(req.ForgottenTopics) == 0 {
		return
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			delete(s.index, topicPartition{ft.Topic, p})
		}
	}
	kept := s.parts[:0]
	for _, cp := range s.parts {
		if s.index[cp.topicPartition] == cp {
			kept = append(kept, cp)
		}
	}
	clear(s.parts[len(kept):])
	s.parts = kept
}

func (cp *cachedPartition) setRequest(rp *kmsg.FetchRequestTopicPartition) {
	cp.fetchOffset, cp.clientLogStart, cp.maxBytes = rp.FetchOffset, rp.LogStartOffset, rp.PartitionMaxBytes
	cp.leaderEpoch, cp.lastFetched = rp.CurrentLeaderEpoch, rp.LastFetchedEpoch
}

// requestTopics lists the session's partitions as request topics, in the session's
// order, consecutive partitions of one topic in one entry.
func (s *fetchSession) requestTopics(dst []kmsg.FetchRequestTopic) []kmsg.FetchRequestTopic {
	for _, cp := range s.parts {
		if len(dst) == 0 || dst[len(dst)-1].Topic != cp.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = cp.topic
			dst = append(dst, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.LogStartOffset, rp.PartitionMaxBytes = cp.partition, cp.fetchOffset, cp.clientLogStart, cp.maxBytes
		rp.CurrentLeaderEpoch, rp.LastFetchedEpoch = cp.leaderEpoch, cp.lastFetched
		rt := &dst[len(dst)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return dst
}

// finish turns the response fetchOnce built into the context's answer: for a full fetch
// that asked for one it creates the session (resp.SessionID, 0 if the cache had no room);
// for an incremental one it leaves out the partitions with nothing new, updates what the
// session remembers, and moves the partitions that got records to the end. It says
// whether it may have taken partitions out of resp: the caller then keeps only the
// record sets resp still carries (conn.answer).
func (fc *fetchSessionCache) finish(ctx fetchContext, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) (pruned bool) {
	switch {
	case ctx.create:
		resp.SessionID = fc.create(req, resp)
	case ctx.session != nil:
		s := ctx.session
		s.mu.Lock()
		defer s.mu.Unlock()
		resp.SessionID = s.id
		if s.epoch != nextFetchEpoch(req.SessionEpoch) {
			// Another fetch on the session since this one began (Kafka checks the same).
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
			resp.Topics = nil
			return true
		}
		s.prune(resp)
		return true
	}
	return false
}

// prune is the incremental half of finish, under s.mu.
func (s *fetchSession) prune(resp *kmsg.FetchResponse) {
	var moved []*cachedPartition
	topics := resp.Topics[:0]
	for _, st := range resp.Topics {
		parts := st.Partitions[:0]
		for _, sp := range st.Partitions {
			cp := s.index[topicPartition{st.Topic, sp.Partition}]
			if cp == nil { // forgotten by a later request: not ours to answer
				continue
			}
			records := len(sp.RecordBatches) > 0
			must := records || sp.ErrorCode != 0 || cp.hwm != sp.HighWatermark || cp.lso != sp.LastStableOffset || cp.logStart != sp.LogStartOffset
			cp.hwm, cp.lso, cp.logStart = sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset
			if sp.ErrorCode != 0 {
				cp.hwm = -1 // as Kafka: answered again once the error is gone
			}
			if records {
				moved = append(moved, cp)
			}
			if must {
				parts = append(parts, sp)
			}
		}
		if len(parts) > 0 {
			st.Partitions = parts
			topics = append(topics, st)
		}
	}
	clear(resp.Topics[len(topics):])
	resp.Topics = topics
	if len(moved) == 0 || len(moved) == len(s.parts) {
		return
	}
	isMoved := make(map[*cachedPartition]bool, len(moved))
	for _, cp := range moved {
		isMoved[cp] = true
	}
	kept := s.parts[:0]
	for _, cp := range s.parts {
		if !isMoved[cp] {
			kept = append(kept, cp)
		}
	}
	s.parts = append(kept, moved...)
}

// create is Kafka's FetchSessionCache.maybeCreateSession: the new session's id, or 0 when
// there is no room.
func (fc *fetchSessionCache) create(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) int32 {
	privileged := req.ReplicaID >= 0
	size := 0
	for _, st := range resp.Topics {
		size += len(st.Partitions)
	}
	now := fc.now()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.sessions) >= fc.slots && !fc.evictLocked(privileged, size, now) {
		return 0
	}
	s := &fetchSession{privileged: privileged, created: now, lastUsed: now, size: size, epoch: 1,
		index: make(map[topicPartition]*cachedPartition, size), parts: make([]*cachedPartition, 0, size)}
	byTopic := make(map[string]*kmsg.FetchRequestTopic, len(req.Topics))
	for i := range req.Topics {
		byTopic[req.Topics[i].Topic] = &req.Topics[i]
	}
	for _, st := range resp.Topics {
		name := strings.Clone(st.Topic)
		rt := byTopic[st.Topic]
		for _, sp := range st.Partitions {
			tp := topicPartition{name, sp.Partition}
			if s.index[tp] != nil {
				continue // named twice in the request
			}
			cp := &cachedPartition{topicPartition: tp, hwm: sp.HighWatermark, lso: sp.LastStableOffset, logStart: sp.LogStartOffset}
			if sp.ErrorCode != 0 {
				cp.hwm = -1
			}
			if rt != nil {
				for j := range rt.Partitions {
					if rt.Partitions[j].Partition == sp.Partition {
						cp.setRequest(&rt.Partitions[j])
						break
					}
				}
			}
			s.index[tp] = cp
			s.parts = append(s.parts, cp)
		}
	}
	s.size = len(s.parts)
	for {
		s.id = rand.Int32()
		if s.id != 0 && fc.sessions[s.id] == nil {
			break
		}
	}
	fc.sessions[s.id] = s
	fc.parts += s.size
	fc.gauge.Set(float64(len(fc.sessions)))
	fc.partsGauge.Set(float64(fc.parts))
	return s.id
}

// evictLocked is Kafka's FetchSessionCache.tryEvict for a new session of size partitions.
func (fc *fetchSessionCache) evictLocked(privileged bool, size int, now time.Time) bool {
	var lru, victim *fetchSession
	for _, s := range fc.sessions {
		if lru == nil || s.lastUsed.Before(lru.lastUsed) || s.lastUsed.Equal(lru.lastUsed) && s.id < lru.id {
			lru = s
		}
		if !privileged && now.Sub(s.created) <= fetchSessionEvictionAge {
			continue
		}
		if victim == nil || evictableLess(s, victim) {
			victim = s
		}
	}
	if lru == nil {
		return false
	}
	if now.Sub(lru.lastUsed) > fetchSessionEvictionAge {
		fc.removeLocked(lru)
		fc.evictions.Inc()
		return true
	}
	// The newcomer's key (privileged, size, id 0) must not be less than the victim's.
	if victim == nil || !privileged && victim.privileged || privileged == victim.privileged && size <= victim.size {
		return false
	}
	fc.removeLocked(victim)
	fc.evictions.Inc()
	return true
}

// evictableLess orders sessions as Kafka's EvictableKey: unprivileged first, then fewer
// partitions, then lower id.
func evictableLess(a, b *fetchSession) bool {
	if a.privileged != b.privileged {
		return !a.privileged
	}
	if a.size != b.size {
		return a.size < b.size
	}
	return a.id < b.id
}

func (fc *fetchSessionCache) touch(s *fetchSession, size int) {
	now := fc.now()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if s.removed {
		return
	}
	s.lastUsed = now
	fc.parts += size - s.size
	s.size = size
	fc.partsGauge.Set(float64(fc.parts))
}

func (fc *fetchSessionCache) remove(id int32) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if s := fc.sessions[id]; s != nil {
		fc.removeLocked(s)
	}
}

func (fc *fetchSessionCache) removeLocked(s *fetchSession) {
	delete(fc.sessions, s.id)
	s.removed = true
	fc.parts -= s.size
	fc.gauge.Set(float64(len(fc.sessions)))
	fc.partsGauge.Set(float64(fc.parts))
}

// throttled undoes what a fetch answered empty for a quota did to its session: a session
// its full fetch created is closed (Kafka creates none for a throttled fetch) and the
// answer is sessionless; an incremental session keeps its id in the answer and forgets
// what it last answered, so the next fetch reports every partition again.
func (fc *fetchSessionCache) throttled(req *kmsg.FetchRequest, resp, empty *kmsg.FetchResponse) {
	empty.ErrorCode = resp.ErrorCode
	if resp.SessionID == 0 {
		return
	}
	if req.SessionEpoch == 0 { // the full fetch that created it
		fc.remove(resp.SessionID)
		return
	}
	empty.SessionID = resp.SessionID
	fc.mu.Lock()
	s := fc.sessions[resp.SessionID]
	fc.mu.Unlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	for _, cp := range s.parts {
		cp.hwm = -1
	}
	s.mu.Unlock()
}
