package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A sessionless fetch (epoch -1) is served whatever its session id; an incremental fetch
// on an unknown session is refused with FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionEpochs(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(-1, "sessions", 0, batch(3, 1000, []byte("r"))))
	c.read(&kmsg.ProduceResponse{Version: 9})

	req := fetchReq("sessions", 0, 0, 0)
	req.SessionID, req.SessionEpoch = -1, -1
	c.send(req)
	resp := &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("sessionless fetch with id -1: %+v", resp)
	}

	req = fetchReq("sessions", 0, 0, 0)
	req.SessionID, req.SessionEpoch = 42, 3
	c.send(req)
	resp = &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("incremental fetch on unknown session: error %d", resp.ErrorCode)
	}
}
