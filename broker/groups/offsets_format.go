package groups

import (
	"bytes"
	"encoding/binary"
	"encoding/json"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The JSON lines of Kafka's console-consumer formatters for __consumer_offsets
// (org.apache.kafka.tools.consumer.OffsetsMessageFormatter and
// GroupMetadataMessageFormatter, Kafka 3.8+): {"key":{"type":K,"data":{…}},
// "value":{"version":V,"data":{…}}} with the fields named as in Kafka's record schemas,
// bytes in base64, and "NULL" for a tombstone's value. Each formatter prints its own
// record type only.

// Formatter says which of __consumer_offsets' records FormatRecord prints.
type Formatter int

const (
	// FormatOffsets prints OffsetCommit records (OffsetsMessageFormatter).
	FormatOffsets Formatter = iota
	// FormatGroupMetadata prints GroupMetadata records (GroupMetadataMessageFormatter).
	FormatGroupMetadata
)

type jsonKey struct {
	Type int16 `json:"type"`
	Data any   `json:"data"`
}

type jsonValue struct {
	Version int16 `json:"version"`
	Data    any   `json:"data"`
}

type jsonRecord struct {
	Key   jsonKey `json:"key"`
	Value any     `json:"value"`
}

type offsetKeyJSON struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

type offsetValueJSON struct {
	Offset          int64  `json:"offset"`
	LeaderEpoch     *int32 `json:"leaderEpoch,omitempty"` // v3+
	Metadata        string `json:"metadata"`
	CommitTimestamp int64  `json:"commitTimestamp"`
	ExpireTimestamp *int64 `json:"expireTimestamp,omitempty"` // v1 only
}

type groupKeyJSON struct {
	Group string `json:"group"`
}

type groupMemberJSON struct {
	MemberID         string  `json:"memberId"`
	GroupInstanceID  *string `json:"groupInstanceId"`
	ClientID         string  `json:"clientId"`
	ClientHost       string  `json:"clientHost"`
	RebalanceTimeout int32   `json:"rebalanceTimeout"`
	SessionTimeout   int32   `json:"sessionTimeout"`
	Subscription     []byte  `json:"subscription"`
	Assignment       []byte  `json:"assignment"`
}

type groupValueJSON struct {
	ProtocolType          string            `json:"protocolType"`
	Generation            int32             `json:"generation"`
	Protocol              *string           `json:"protocol"`
	Leader                *string           `json:"leader"`
	CurrentStateTimestamp int64             `json:"currentStateTimestamp"`
	Members               []groupMemberJSON `json:"members"`
}

// FormatRecord is the formatter's line for a __consumer_offsets record, or ok=false
// for a record of the other type, or one that does not decode.
func FormatRecord(f Formatter, key, value []byte) (line []byte, ok bool) {
	if len(key) < 2 {
		return nil, false
	}
	var rec jsonRecord
	rec.Value = "NULL"
	switch v := int16(binary.BigEndian.Uint16(key)); {
	case (v == 0 || v == 1) && f == FormatOffsets:
		var k kmsg.OffsetCommitKey
		if k.ReadFrom(key) != nil {
			return nil, false
		}
		rec.Key = jsonKey{Type: v, Data: offsetKeyJSON{Group: k.Group, Topic: k.Topic, Partition: k.Partition}}
		if value != nil {
			var val kmsg.OffsetCommitValue
			if val.ReadFrom(value) != nil {
				return nil, false
			}
			d := offsetValueJSON{Offset: val.Offset, Metadata: val.Metadata, CommitTimestamp: val.CommitTimestamp}
			if val.Version >= 3 {
				d.LeaderEpoch = &val.LeaderEpoch
			}
			if val.Version == 1 {
				d.ExpireTimestamp = &val.ExpireTimestamp
			}
			rec.Value = jsonValue{Version: val.Version, Data: d}
		}
	case v == 2 && f == FormatGroupMetadata:
		var k kmsg.GroupMetadataKey
		if k.ReadFrom(key) != nil {
			return nil, false
		}
		rec.Key = jsonKey{Type: v, Data: groupKeyJSON{Group: k.Group}}
		if value != nil {
			var val kmsg.GroupMetadataValue
			if val.ReadFrom(value) != nil {
				return nil, false
			}
			d := groupValueJSON{ProtocolType: val.ProtocolType, Generation: val.Generation, Protocol: val.Protocol,
				Leader: val.Leader, CurrentStateTimestamp: val.CurrentStateTimestamp, Members: []groupMemberJSON{}}
			for _, m := range val.Members {
				d.Members = append(d.Members, groupMemberJSON{MemberID: m.MemberID, GroupInstanceID: m.InstanceID,
					ClientID: m.ClientID, ClientHost: m.ClientHost, RebalanceTimeout: m.RebalanceTimeoutMillis,
					SessionTimeout: m.SessionTimeoutMillis, Subscription: m.Subscription, Assignment: m.Assignment})
			}
			rec.Value = jsonValue{Version: val.Version, Data: d}
		}
	default:
		return nil, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // group and topic names as written, as Jackson writes them
	if enc.Encode(rec) != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}
