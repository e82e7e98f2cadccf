package broker

// The transaction coordinator of this single node (Kafka's TransactionCoordinator and
// TransactionStateManager, in one structure).
//
// Each transactional id has a producer id, an epoch (bumped by every InitProducerID,
// which fences the previous producer) and a state: Empty, Ongoing (partitions or a
// group were added), PrepareCommit / PrepareAbort (the decision is durable, markers are
// being written), CompleteCommit / CompleteAbort. Ending a transaction writes the
// decision, then a marker to every partition of the transaction (storage.AppendMarker)
// and, on commit, the transaction's offsets to the group coordinator, then the completed
// state. Every change is one JSON line appended to
// Dir/__transaction_state/txn.log (fsynced with flush: always) before it is answered;
// the file is replayed and rewritten compacted at start, where a transaction left in a
// Prepare state is completed and an Ongoing one resumes (its timeout still applies), as
// Kafka does. A background check aborts Ongoing transactions older than their timeout
// with a bumped epoch, so the producer's next request is fenced, and forgets ids whose
// last transaction ended longer ago than transactional.id.expiration.ms (a "Dead" line).
//
// Locking: txnCoordinator.mu is taken before a partition's appendMu and before the
// group coordinator's lock (locks.md). Transactional produces hold it shared from the
// check that the partition is in the transaction through the append, so a marker can
// never be written between the two.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tagpipe/tagpipe/broker/groups"
	"github.com/tagpipe/tagpipe/broker/storage"
	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// Transaction states, named as Kafka names them (DescribeTransactions, ListTransactions).
const (
	txnEmpty          = "Empty"
	txnOngoing        = "Ongoing"
	txnPrepareCommit  = "PrepareCommit"
	txnPrepareAbort   = "PrepareAbort"
	txnCompleteCommit = "CompleteCommit"
	txnCompleteAbort  = "CompleteAbort"
	// txnDead is the txn.log line of an expired transactional id: replay forgets it.
	txnDead = "Dead"
)

// txnMeta is one transactional id's state; it is also the txn.log line.
type txnMeta struct {
	ID        string                                           `json:"id"`
	PID       int64                                            `json:"pid"`
	Epoch     int16                                            `json:"epoch"`
	TimeoutMs int32                                            `json:"timeout_ms"`
	State     string                                           `json:"state"`
	Parts     map[string][]int32                               `json:"partitions,omitempty"`
	Groups    []string                                         `json:"groups,omitempty"`
	Offsets   map[string]map[string]map[int32]groups.Committed `json:"offsets,omitempty"` // group → topic → partition
	StartMs   int64                                            `json:"start_ms"`
	UpdateMs  int64                                            `json:"update_ms"`
}

func (m *txnMeta) hasPart(topic string, part int32) bool {
	for _, p := range m.Parts[topic] {
		if p == part {
			return true
		}
	}
	return false
}

func (m *txnMeta) hasGroup(g string) bool {
	for _, x := range m.Groups {
		if x == g {
			return true
		}
	}
	return false
}

type txnCoordinator struct {
	b     *Broker
	mu    sync.RWMutex
	txns  map[string]*txnMeta
	path  string
	f     *os.File
	sync  bool
	size  int64 // bytes in txn.log: a failed append is cut back to it
	lines int   // lines in txn.log, for compaction
}

// openTxnCoordinator replays txn.log, rewrites it compacted and completes the
// transactions a crash left in a Prepare state. Partitions must be loaded.
func openTxnCoordinator(b *Broker) (*txnCoordinator, error) {
	dir := filepath.Join(b.opts.Dir, "__transaction_state")
	if err := fsutil.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("cannot create %q: %w", dir, err)
	}
	tc := &txnCoordinator{b: b, txns: map[string]*txnMeta{}, path: filepath.Join(dir, "txn.log"), sync: b.opts.Flush.Mode == "always"}
	data, err := os.ReadFile(tc.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read %q: %w", tc.path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var m txnMeta
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m.ID == "" {
			// A torn last line (the append it belonged to was never answered).
			b.log.Warn("ignoring the rest of a torn transaction log", "file", tc.path, "err", err)
			break
		}
		if m.State == txnDead {
			delete(tc.txns, m.ID)
			continue
		}
		tc.txns[m.ID] = &m
	}
	if err := tc.rewriteLocked(); err != nil {
		return nil, err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, m := range tc.sorted() {
		switch m.State {
		case txnPrepareCommit, txnPrepareAbort:
			if err := tc.completeLocked(m, m.State == txnPrepareCommit); err != nil {
				b.log.Warn("cannot complete a prepared transaction; retrying in the background", "transactional_id", m.ID, "err", err)
			}
		case txnOngoing:
			b.log.Info("resuming an open transaction", "transactional_id", m.ID, "producer_id", m.PID, "epoch", m.Epoch)
		}
	}
	return tc, nil
}

func (tc *txnCoordinator) sorted() []*txnMeta {
	out := make([]*txnMeta, 0, len(tc.txns))
	for _, m := range tc.txns {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// rewriteLocked replaces txn.log with one line per transactional id and reopens it for
// appends.
func (tc *txnCoordinator) rewriteLocked() error {
	var buf bytes.Buffer
	for _, m := range tc.sorted() {
		line, err := json.Marshal(m)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if tc.f != nil {
		_ = tc.f.Close()
		tc.f = nil
	}
	if err := fsutil.WriteFile(tc.path, buf.Bytes()); err != nil {
		return fmt.Errorf("cannot rewrite %q: %w", tc.path, err)
	}
	f, err := os.OpenFile(tc.path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", tc.path, err)
	}
	tc.f, tc.lines, tc.size = f, len(tc.txns), int64(buf.Len())
	return nil
}

// persistLocked appends m's state to txn.log (fsynced with flush: always).
func (tc *txnCoordinator) persistLocked(m *txnMeta) error {
	m.UpdateMs = tc.b.now().UnixMilli()
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	_, err = tc.f.Write(line)
	if err == nil && tc.sync {
		err = tc.f.Sync()
	}
	if err != nil {
		// Cut a half-written line back, so that no later line hides behind it.
		if terr := tc.f.Truncate(tc.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("cannot append to %q: %w", tc.path, err)
	}
	tc.size += int64(len(line))
	tc.lines++
	if tc.lines > 1000 && tc.lines > 4*len(tc.txns) {
		if err := tc.rewriteLocked(); err != nil {
			tc.b.log.Warn("cannot compact the transaction log", "err", err)
		}
	}
	return nil
}

func (tc *txnCoordinator) close() error {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.f == nil {
		return nil
	}
	err := tc.f.Close()
	tc.f = nil
	return err
}

// fenced is Kafka's answer to a stale epoch: PRODUCER_FENCED from the request version
// that knows it (KIP-588), INVALID_PRODUCER_EPOCH before.
func fenced(version, since int16) int16 {
	if version >= since {
		return kerr.ProducerFenced.Code
	}
	return kerr.InvalidProducerEpoch.Code
}

// check validates a request's producer id and epoch against the transactional id, as
// Kafka's coordinator does for AddPartitionsToTxn, AddOffsetsToTxn and EndTxn.
func (tc *txnCoordinator) check(id string, pid int64, epoch int16, version, fencedSince int16) (*txnMeta, int16) {
	m := tc.txns[id]
	switch {
	case m == nil || m.PID != pid:
		return nil, kerr.InvalidProducerIDMapping.Code
	case m.Epoch != epoch:
		return nil, fenced(version, fencedSince)
	case m.State == txnPrepareCommit || m.State == txnPrepareAbort:
		return nil, kerr.ConcurrentTransactions.Code
	}
	return m, 0
}

// initProducerID serves InitProducerID with a transactional id.
func (tc *txnCoordinator) initProducerID(id string, timeoutMs int32, reqPID int64, reqEpoch int16, version int16) (int64, int16, int16) {
	if timeoutMs <= 0 || int64(timeoutMs) > tc.b.opts.TransactionMaxTimeout.Milliseconds() {
		return -1, -1, kerr.InvalidTransactionTimeout.Code
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	m := tc.txns[id]
	if m != nil && version >= 3 && reqPID >= 0 && (reqPID != m.PID || reqEpoch != m.Epoch) {
		return -1, -1, fenced(version, 4)
	}
	if m != nil {
		switch m.State {
		case txnPrepareCommit, txnPrepareAbort:
			if err := tc.completeLocked(m, m.State == txnPrepareCommit); err != nil {
				return -1, -1, kerr.ConcurrentTransactions.Code
			}
		case txnOngoing:
			// Fence the previous producer and abort its transaction first.
			if err := tc.abortBumpedLocked(m); err != nil {
				tc.b.log.Warn("cannot abort the previous producer's transaction", "transactional_id", id, "err", err)
				return -1, -1, kerr.ConcurrentTransactions.Code
			}
		}
	}
	if m == nil || m.Epoch >= math.MaxInt16-1 {
		tc.b.pidMu.Lock()
		pid, err := tc.b.nextProducerIDLocked()
		tc.b.pidMu.Unlock()
		if err != nil {
			tc.b.log.Error("cannot allocate a producer id", "err", err)
			return -1, -1, kerr.KafkaStorageError.Code
		}
		if m == nil {
			m = &txnMeta{ID: id}
			tc.txns[id] = m
		}
		m.PID, m.Epoch = pid, 0
	} else {
		m.Epoch++
	}
	m.TimeoutMs, m.State, m.Parts, m.Groups, m.Offsets = timeoutMs, txnEmpty, nil, nil, nil
	if err := tc.persistLocked(m); err != nil {
		tc.b.log.Error("cannot persist transaction state", "err", err)
		return -1, -1, kerr.KafkaStorageError.Code
	}
	return m.PID, m.Epoch, 0
}

// abortBumpedLocked aborts an Ongoing transaction with the epoch bumped, so its producer
// is fenced (InitProducerID of a new producer, timeout).
func (tc *txnCoordinator) abortBumpedLocked(m *txnMeta) error {
	if m.Epoch < math.MaxInt16-1 {
		m.Epoch++
	}
	return tc.completeLocked(m, false)
}

// begin moves m to Ongoing (if it is not) and persists it.
func (tc *txnCoordinator) beginLocked(m *txnMeta) int16 {
	if m.State != txnOngoing {
		m.State, m.StartMs = txnOngoing, tc.b.now().UnixMilli()
	}
	if err := tc.persistLocked(m); err != nil {
		tc.b.log.Error("cannot persist transaction state", "err", err)
		return kerr.KafkaStorageError.Code
	}
	return 0
}

// completeLocked ends m: the decision, the markers, the offsets (commit), the completed
// state. On an error m stays in its Prepare state, which the background check retries.
func (tc *txnCoordinator) completeLocked(m *txnMeta, commit bool) error {
	m.State = txnPrepareAbort
	if commit {
		m.State = txnPrepareCommit
	}
	if err := tc.persistLocked(m); err != nil {
		return err
	}
	for _, topic := range sortedKeysOf(m.Parts) {
		for _, idx := range m.Parts[topic] {
			p := tc.b.partition(topic, idx)
			if p == nil {
				continue // deleted meanwhile
			}
			p.appendMu.Lock()
			_, err := p.log.AppendMarker(m.PID, m.Epoch, commit, 0)
			p.appendMu.Unlock()
			if err != nil && !errors.Is(err, storage.ErrClosed) && !errors.Is(err, storage.ErrInvalidProducerEpoch) {
				return fmt.Errorf("cannot write the transaction marker to %s-%d: %w", topic, idx, err)
			}
		}
	}
	if commit {
		for _, g := range sortedKeysOf(m.Offsets) {
			if err := tc.b.groups.CommitTxn(g, m.Offsets[g]); err != nil {
				return fmt.Errorf("cannot commit the transaction's offsets of group %q: %w", g, err)
			}
		}
	}
	m.State = txnCompleteAbort
	if commit {
		m.State = txnCompleteCommit
	}
	m.Parts, m.Groups, m.Offsets = nil, nil, nil
	return tc.persistLocked(m)
}

func sortedKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkProduce is called with mu held shared for a transactional produce to one
// partition: the producer must be the transactional id's current one, in an Ongoing
// transaction that holds the partition.
func (tc *txnCoordinator) checkProduceLocked(id string, pid int64, epoch int16, topic string, part int32) (int16, string) {
	m := tc.txns[id]
	switch {
	case m == nil || m.PID != pid:
		return kerr.InvalidProducerIDMapping.Code, "the producer id is not the transactional id's"
	case epoch < m.Epoch:
		return kerr.InvalidProducerEpoch.Code, "the producer has been fenced by a newer epoch"
	case epoch > m.Epoch:
		return kerr.InvalidProducerEpoch.Code, "unknown producer epoch"
	case m.State != txnOngoing || !m.hasPart(topic, part):
		return kerr.InvalidTxnState.Code, "the partition was not added to the transaction"
	}
	return 0, ""
}

// pendingOffset reports whether an open transaction holds an offset for the group's
// partition (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT).
func (tc *txnCoordinator) pendingOffset(group, topic string, part int32) bool {
	tc.mu.RLock()
	defer tc.mu.RUnlock()
	for _, m := range tc.txns {
		if _, ok := m.Offsets[group][topic][part]; ok {
			return true
		}
	}
	return false
}

// sweep aborts Ongoing transactions past their timeout (with a bumped epoch: their
// producer's next request is fenced), retries Prepare states an error left, and
// expires idle transactional ids.
func (tc *txnCoordinator) sweep() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	now := tc.b.now().UnixMilli()
	exp := tc.b.opts.TransactionalIDExpiration.Milliseconds()
	for _, m := range tc.sorted() {
		var err error
		switch {
		case m.State == txnOngoing && now-m.StartMs > int64(m.TimeoutMs):
			tc.b.log.Info("aborting a timed-out transaction", "transactional_id", m.ID, "producer_id", m.PID, "epoch", m.Epoch)
			err = tc.abortBumpedLocked(m)
		case m.State == txnPrepareCommit || m.State == txnPrepareAbort:
			err = tc.completeLocked(m, m.State == txnPrepareCommit)
		case exp > 0 && now-m.UpdateMs > exp && (m.State == txnEmpty || m.State == txnCompleteCommit || m.State == txnCompleteAbort):
			err = tc.expireLocked(m)
		}
		if err != nil {
			tc.b.log.Warn("cannot end a transaction; retrying later", "transactional_id", m.ID, "err", err)
		}
	}
}

// expireLocked forgets m, an id with no transaction in progress (Empty, CompleteCommit
// or CompleteAbort) idle for transactional.id.expiration.ms, as Kafka's coordinator does:
// DescribeTransactions answers TRANSACTIONAL_ID_NOT_FOUND, ListTransactions leaves it
// out, and its next InitProducerID starts afresh with a new producer id.
func (tc *txnCoordinator) expireLocked(m *txnMeta) error {
	dead := txnMeta{ID: m.ID, PID: m.PID, Epoch: m.Epoch, State: txnDead}
	delete(tc.txns, m.ID) // first: a compaction the append triggers must not write m back
	if err := tc.persistLocked(&dead); err != nil {
		tc.txns[m.ID] = m
		return err
	}
	tc.b.log.Info("transactional id expired", "transactional_id", m.ID, "producer_id", m.PID,
		"idle", time.Duration(tc.b.now().UnixMilli()-m.UpdateMs)*time.Millisecond)
	return nil
}
