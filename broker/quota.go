package broker

// Client quotas on the connections (KIP-13, KIP-124, KIP-219): after a request is
// handled, its bytes (Produce: the request; Fetch: the response, as Kafka's
// FetchResponse.sizeOf counts it) and the time it kept the connection's goroutine
// working (decoding and handling, less a Fetch's long-poll) are recorded, at one reading
// of the quota clock, against the quotas that apply to the connection's user and client
// id (broker/quota); the response's encoding is added after it, without a throttle
// check, as Kafka adds network-thread time. A client over its quota gets the throttle
// time in the response's ThrottleMillis and its connection muted for that long: no
// further request is read from it. For the versions whose clients throttle themselves
// (KIP-219, kmsg's ThrottleResponse says which) the response is sent at once and the
// connection muted after; for older versions the response itself waits out the
// throttle, as Kafka delays it. A throttled Fetch is answered empty (its bytes are taken
// back out of the rate at the instant they were recorded at), and a Fetch's MaxBytes is
// bounded by what the quota allows in one window, as in Kafka's KafkaApis. With no quota
// set nothing here runs but one atomic load per request.

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
)

// anonymousUser is the user name of an unauthenticated connection (Kafka's
// KafkaPrincipal.ANONYMOUS).
const anonymousUser = "ANONYMOUS"

// quotaUser is the connection's user for quotas: the SASL user, the client
// certificate's subject, or ANONYMOUS.
func (c *conn) quotaUser() string {
	if c.principal == "" {
		return anonymousUser
	}
	return strings.TrimPrefix(c.principal, "User:")
}

// requestPercent converts handling time to what request_percentage measures:
// percent-seconds of one thread (Kafka's nanosToPercentage).
func requestPercent(d time.Duration) float64 { return float64(max(d, 0)) * 100 / 1e9 }

// applyQuotas records the request at now against the connection's quotas and returns
// the response to send (resp, with the throttle time set; for a throttled Fetch an
// empty one; nil for acks=0 Produce). It sets c.throttle, the time to mute the
// connection, and c.throttleFirst when the response must wait for it (pre-KIP-219
// versions). busy is the time the request kept the connection's goroutine working so
// far: decoding and handling, less any long-poll wait (Kafka's request-handler thread
// time; the encoding follows in recordEncoding). Only called when some quota is set.
func (c *conn) applyQuotas(h requestHeader, req kmsg.Request, resp kmsg.Response, reqBytes int, busy time.Duration, now time.Time) kmsg.Response {
	if !c.quotaCounted(h.key) {
		return resp
	}
	qm := c.b.quotas
	user, client := c.quotaUser(), c.clientID
	var bandwidth, request time.Duration
	switch h.key {
	case 0:
		bandwidth = qm.Record(quota.Produce, user, client, float64(reqBytes), now)
		if req.(*kmsg.ProduceRequest).Acks != 0 { // as Kafka: acks=0 is not request-throttled
			request = qm.Record(quota.Request, user, client, requestPercent(busy), now)
		}
	case 1:
		// As Kafka's handleFetchRequest: the request time, then the response's size, both
		// at one instant; a throttled fetch is answered empty, so its bytes are taken back
		// out at that same instant (at another, they could land in another sample).
		request = qm.Record(quota.Request, user, client, requestPercent(busy), now)
		size := -1
		if qm.Quotas().Has(quota.Fetch) {
			size = c.fetchResponseBytes(resp)
			bandwidth = qm.Record(quota.Fetch, user, client, float64(size), now)
		}
		if max(bandwidth, request) > 0 {
			if size >= 0 {
				qm.Unrecord(quota.Fetch, user, client, float64(size), now)
			}
			c.releaseSplices()
			empty := req.ResponseKind().(*kmsg.FetchResponse)
			empty.SetVersion(h.version)
			c.b.fetchSessions.throttled(req.(*kmsg.FetchRequest), resp.(*kmsg.FetchResponse), empty)
			resp = empty
		}
	default:
		request = qm.Record(quota.Request, user, client, requestPercent(busy), now)
	}
	t := max(bandwidth, request)
	if t <= 0 {
		return resp
	}
	c.throttle, c.throttleFirst = t, false
	if resp == nil { // acks=0: nothing to answer, just mute
		return nil
	}
	if st, ok := resp.(kmsg.SetThrottleResponse); ok {
		st.SetThrottle(int32(t / time.Millisecond))
	}
	if tr, ok := resp.(kmsg.ThrottleResponse); ok {
		_, after := tr.Throttle()
		c.throttleFirst = !after
	}
	return resp
}

// quotaCounted reports whether a request of this key counts against quotas: the SASL
// exchange does not (Kafka authenticates before requests reach KafkaApis).
func (c *conn) quotaCounted(key int16) bool { return !c.unauth && key != 17 && key != 36 }

// recordEncoding adds the time since from (encoding the response) to the request
// quota without a throttle check, as Kafka adds a request's network-thread time once
// its response is out (recordNoThrottle): the client's next request pays for it.
func (c *conn) recordEncoding(h requestHeader, from time.Time) {
	qm := c.b.quotas
	if !c.quotaCounted(h.key) || !qm.Quotas().Has(quota.Request) {
		return
	}
	now := qm.Now()
	qm.RecordNoThrottle(quota.Request, c.quotaUser(), c.clientID, requestPercent(now.Sub(from)), now)
}

// fetchResponseBytes is what Kafka records for a Fetch response (FetchResponse.sizeOf:
// the size field and the body, header excluded): the encoding with each record set's
// marker replaced by the record set, and its length prefix by the real one.
func (c *conn) fetchResponseBytes(resp kmsg.Response) int {
	n := 4 + len(resp.AppendTo(nil))
	for _, s := range c.splices {
		n += s.rr.Len() - len(s.marker)
		if resp.IsFlexible() { // compact bytes: uvarint(len+1); the marker's took one byte
			n += len(binary.AppendUvarint(nil, uint64(s.rr.Len())+1)) - 1
		}
	}
	return n
}

// capFetchToQuota bounds a Fetch's MaxBytes (and MinBytes) by what the connection's
// consumer quota allows in one quota window (Kafka's maxValueInQuotaWindow), so one
// response cannot be throttled for sure.
func (c *conn) capFetchToQuota(req *kmsg.FetchRequest) {
	if !c.b.quotas.Active() || !c.b.quotas.Quotas().Has(quota.Fetch) {
		return
	}
	limit, ok := c.b.quotas.MaxValueInWindow(quota.Fetch, c.quotaUser(), c.clientID)
	if !ok {
		return
	}
	capped := int32(max(1, min(limit, float64(1<<31-1))))
	if req.MaxBytes <= 0 || req.MaxBytes > capped {
		req.MaxBytes = capped
	}
	req.MinBytes = min(req.MinBytes, req.MaxBytes)
}

// waitThrottle mutes the connection for c.throttle (no request is read meanwhile) and
// clears it; false if the connection or the broker closed meanwhile.
func (c *conn) waitThrottle() bool {
	t := time.NewTimer(c.throttle)
	defer t.Stop()
	c.throttle, c.throttleFirst = 0, false
	c.b.metrics.throttledConns.Inc()
	defer c.b.metrics.throttledConns.Dec()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	case <-c.b.stop:
		return false
	}
}
