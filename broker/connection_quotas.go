package broker

// Connection limits and ip quotas on accept, as Kafka's ConnectionQuotas (SocketServer,
// KIP-402, KIP-612) for one node. Every accepted connection goes through
// connQuotas.inc before the broker reads from it, in Kafka's order:
//
//  1. The broker-wide connection creation rate (MaxConnectionCreationRate, Kafka's
//     max.connection.creation.rate): the connection is recorded; over the rate, the
//     acceptor waits the throttle time (at most one quota window) before going on.
//  2. MaxConnections (max.connections): while that many connections are open, the
//     acceptor waits until one closes; the connections behind it wait in the
//     listen backlog. Every listener's acceptor counts against one total.
//  3. The client ip's connection_creation_rate quota (an ip entity or the default ip,
//     set with AlterClientQuotas): the connection is recorded in the ip's rate; over
//     the quota, it is taken back out (of the ip's and the broker's rate), not
//     counted, and held without being read for the throttle time (at most one
//     window), then closed: Kafka's ConnectionThrottledException and delayed close,
//     which slows a reconnecting client down instead of letting it spin.
//  4. MaxConnectionsPerIP and its overrides (max.connections.per.ip,
//     max.connections.per.ip.overrides): a connection from an ip that already has
//     that many is closed at once (Kafka's TooManyConnectionsException).
//
// Kafka also closes the least recently used connection of another listener when the
// total is over max.connections; the total only gets there through the inter-broker
// listener, which Kafka exempts from the limit. One node has no inter-broker
// listener, so no listener is exempt, the total never exceeds the limit and nothing is
// closed for it. The limits are broker-wide: Kafka's per-listener
// listener.name.X.max.connections and max.connection.creation.rate are not offered.
//
// Rates are measured with the client quotas' windows and clock (broker/quota,
// Options.Quotas); the waits are real time.

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/broker/quota"
)

// Reasons a connection is refused or its accept delayed, as the metrics label them.
const (
	reasonMaxConnsPerIP  = "max_connections_per_ip"       // closed at once
	reasonIPConnRate     = "ip_connection_rate"           // closed after the throttle
	reasonMaxConns       = "max_connections"              // accept waited for a slot
	reasonBrokerConnRate = "max_connection_creation_rate" // accept waited the throttle
)

// connQuotas counts the open connections per ip and in all, and applies the limits.
type connQuotas struct {
	b         *Broker
	maxConns  int            // 0 = unlimited
	maxPerIP  int            // 0 = unlimited
	overrides map[string]int // canonical ip → its own maximum
	rate      float64        // broker-wide new connections per second; 0 = unlimited

	// mu guards the counts; cond signals a closed connection (or the stop) to an
	// acceptor waiting for a slot. Only quota.Manager's locks are taken under mu.
	mu      sync.Mutex
	cond    *sync.Cond
	counts  map[string]int
	total   int
	blocked int // acceptors waiting right now
	stopped bool
	// fullLogged: when waiting for a slot under maxConns was last logged (quota clock).
	fullLogged time.Time

	// held are the connections refused by their ip quota, closed when their timer
	// fires or at Stop.
	heldMu sync.Mutex
	held   map[net.Conn]*time.Timer
}

// tooManyConns refuses a connection over its ip's connection limit.
type tooManyConns struct {
	ip  string
	max int
}

func (e *tooManyConns) Error() string {
	return fmt.Sprintf("%s already has the configured maximum of %d connections", e.ip, e.max)
}

// connThrottled refuses a connection over its ip's connection_creation_rate: it is
// closed after d.
type connThrottled struct {
	ip string
	d  time.Duration
}

func (e *connThrottled) Error() string {
	return fmt.Sprintf("%s is over its connection_creation_rate quota: closing after %v", e.ip, e.d)
}

// errConnStopped: the broker stopped while the connection waited.
var errConnStopped = fmt.Errorf("broker stopping")

// newConnQuotas checks the limits of o and resolves the override hosts (Kafka resolves
// them with InetAddress.getByName).
func newConnQuotas(b *Broker, o *Options) (*connQuotas, error) {
	switch {
	case o.MaxConnections < 0:
		return nil, fmt.Errorf("broker: max connections %d: want 0 (unlimited) or more", o.MaxConnections)
	case o.MaxConnectionsPerIP < 0:
		return nil, fmt.Errorf("broker: max connections per ip %d: want 0 (unlimited) or more", o.MaxConnectionsPerIP)
	case o.MaxConnectionCreationRate < 0:
		return nil, fmt.Errorf("broker: max connection creation rate %d: want 0 (unlimited) or more", o.MaxConnectionCreationRate)
	}
	q := &connQuotas{b: b, maxConns: o.MaxConnections, maxPerIP: o.MaxConnectionsPerIP, rate: float64(o.MaxConnectionCreationRate),
		overrides: map[string]int{}, counts: map[string]int{}, held: map[net.Conn]*time.Timer{}}
	q.cond = sync.NewCond(&q.mu)
	for host, n := range o.MaxConnectionsPerIPOverrides {
		if n < 0 {
			return nil, fmt.Errorf("broker: max connections per ip override %s=%d: want 0 or more", host, n)
		}
		ips := []string{host}
		if _, ok := quota.CanonicalIP(host); !ok {
			addrs, err := net.LookupHost(host)
			if err != nil {
				return nil, fmt.Errorf("broker: max connections per ip override %q: %w", host, err)
			}
			ips = addrs
		}
		for _, ip := range ips {
			if c, ok := quota.CanonicalIP(ip); ok {
				q.overrides[c] = n
			}
		}
	}
	return q, nil
}

// maxFor is the most connections ip may have open (an override of 0 refuses every
// connection from it); limited is false when there is no limit.
func (q *connQuotas) maxFor(ip string) (n int, limited bool) {
	if n, ok := q.overrides[ip]; ok {
		return n, true
	}
	return q.maxPerIP, q.maxPerIP > 0
}

// remoteIP is the canonical address a connection comes from.
func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := quota.CanonicalIP(a.IP.String()); ok {
			return ip
		}
	}
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	return host
}

// inc counts a new connection from ip, waiting first as the limits say (see the
// file's comment); an error refuses it: *tooManyConns, *connThrottled or
// errConnStopped. When it returns nil, dec must follow when the connection closes.
func (q *connQuotas) inc(ip string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.waitForSlot(); err != nil {
		return err
	}
	qm := q.b.quotas
	now := qm.Now()
	if d := qm.RecordIPConnection(ip, now); d > 0 {
		if q.rate > 0 {
			qm.UnrecordBrokerConnection(now)
		}
		return &connThrottled{ip: ip, d: d}
	}
	if m, limited := q.maxFor(ip); limited && q.counts[ip] >= m {
		return &tooManyConns{ip: ip, max: m}
	}
	q.counts[ip]++
	q.total++
	return nil
}

// waitForSlot waits out the broker-wide rate's throttle, then for a free slot under
// MaxConnections (Kafka's waitForConnectionSlot). Called with mu held; it is released
// while waiting.
func (q *connQuotas) waitForSlot() error {
	m := q.b.metrics
	if q.rate > 0 {
		if d := q.b.quotas.RecordBrokerConnection(q.rate, q.b.quotas.Now()); d > 0 {
			m.acceptDelayed.WithLabelValues(reasonBrokerConnRate).Inc()
			if !q.blockFor(d) {
				return errConnStopped
			}
		}
	}
	if q.maxConns > 0 && q.total >= q.maxConns && !q.stopped {
		m.acceptDelayed.WithLabelValues(reasonMaxConns).Inc()
		// Clients see only a connect that hangs; the log says why (Kafka logs nothing
		// here, only its AcceptorBlockedPercent meter). At most once a minute.
		if now := q.b.quotas.Now(); q.fullLogged.IsZero() || now.Sub(q.fullLogged) >= time.Minute {
			q.fullLogged = now
			q.b.log.Warn("max_connections reached: new connections wait, unanswered, until an open one closes",
				"max_connections", q.maxConns)
		}
		start := time.Now()
		q.setBlocked(+1)
		for q.total >= q.maxConns && !q.stopped {
			q.cond.Wait()
		}
		q.setBlocked(-1)
		m.acceptBlocked.Add(time.Since(start).Seconds())
	}
	if q.stopped {
		return errConnStopped
	}
	return nil
}

// blockFor waits d with mu released; false if the broker stopped meanwhile.
func (q *connQuotas) blockFor(d time.Duration) bool {
	q.setBlocked(+1)
	q.mu.Unlock()
	t := time.NewTimer(d)
	var ok bool
	select {
	case <-t.C:
		ok = true
	case <-q.b.stop:
		t.Stop()
	}
	q.mu.Lock()
	q.setBlocked(-1)
	q.b.metrics.acceptBlocked.Add(d.Seconds())
	return ok && !q.stopped
}

func (q *connQuotas) setBlocked(delta int) {
	q.blocked += delta
	q.b.metrics.acceptBlockedNow.Set(float64(q.blocked))
}

// dec uncounts a closed connection from ip and wakes an acceptor waiting for a slot.
func (q *connQuotas) dec(ip string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.counts[ip] <= 1 {
		delete(q.counts, ip)
	} else {
		q.counts[ip]--
	}
	q.total--
	q.cond.Broadcast()
}

// refuse closes a connection inc refused: at once for the per-ip limit, after the
// throttle for the ip quota (held, unread, until then).
func (q *connQuotas) refuse(l *listener, nc net.Conn, err error) {
	m := q.b.metrics
	switch e := err.(type) {
	case *tooManyConns:
		m.connsRefused.WithLabelValues(reasonMaxConnsPerIP).Inc()
		q.b.log.Info("rejected connection: the address already has the configured maximum of connections",
			"remote", nc.RemoteAddr().String(), "listener", l.Name, "max", e.max)
		_ = nc.Close()
	case *connThrottled:
		m.connsRefused.WithLabelValues(reasonIPConnRate).Inc()
		q.b.log.Debug("delaying the close of a connection over its ip's connection_creation_rate",
			"remote", nc.RemoteAddr().String(), "listener", l.Name, "throttle", e.d)
		q.holdAndClose(nc, e.d)
	default:
		_ = nc.Close()
	}
}

// holdAndClose closes nc after d, or at Stop.
func (q *connQuotas) holdAndClose(nc net.Conn, d time.Duration) {
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	if q.held == nil { // stopped
		_ = nc.Close()
		return
	}
	q.held[nc] = time.AfterFunc(d, func() {
		q.heldMu.Lock()
		_, mine := q.held[nc]
		delete(q.held, nc)
		q.heldMu.Unlock()
		if mine {
			_ = nc.Close()
		}
	})
}

// stop wakes the waiting acceptors and closes the held connections.
func (q *connQuotas) stop() {
	q.mu.Lock()
	q.stopped = true
	q.cond.Broadcast()
	q.mu.Unlock()
	q.heldMu.Lock()
	held := q.held
	q.held = nil
	q.heldMu.Unlock()
	for nc, t := range held {
		t.Stop()
		_ = nc.Close()
	}
}

// state is the open connections from ip, in all, and the acceptors waiting (tests).
func (q *connQuotas) state(ip string) (fromIP, total, blocked int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.counts[ip], q.total, q.blocked
}

// Kafka's values of the limits for DescribeConfigs: unlimited is Int.MaxValue.
func kafkaLimit(n int) string {
	if n <= 0 {
		return strconv.Itoa(1<<31 - 1)
	}
	return strconv.Itoa(n)
}

// overridesString renders MaxConnectionsPerIPOverrides as Kafka's
// max.connections.per.ip.overrides: host:n,host:n (sorted).
func overridesString(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for h, n := range m {
		parts = append(parts, h+":"+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
