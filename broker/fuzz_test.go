package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
	"github.com/tagpipe/tagpipe/broker/groups"
	"github.com/tagpipe/tagpipe/broker/quota"
)

// FuzzRequest feeds arbitrary request frames (what follows the 4-byte size) to the
// decoder and handlers. Nothing may panic; a frame is either answered with a well-formed
// response frame, silently accepted (acks=0), or refused with an error (the connection
// would close).
func FuzzRequest(f *testing.F) {
	body := func(r kmsg.Request) []byte { return frameRequest(r, 1)[4:] }
	for v := int16(0); v <= 4; v++ {
		f.Add(body(apiVersionsReq(v)))
	}
	f.Add(body(metadataReq(0)))
	f.Add(body(metadataReq(12, "fuzz")))
	f.Add(body(produceReq(-1, "fuzz", 0, batch(3, 1000, []byte("seed")))))
	f.Add(body(produceReq(0, "fuzz", 0, batch(1, 0, nil))))
	badCRC := batch(2, 1000, []byte("crc"))
	badCRC[20] ^= 1
	f.Add(body(produceReq(1, "fuzz", 0, badCRC)))
	f.Add(body(fetchReq("fuzz", 0, 0, 0)))
	f.Add(body(sessionFetch(0, 0, "fuzz", map[int32]int64{0: 0, 1: 0}, nil, 0)))     // opens a session
	f.Add(body(sessionFetch(7, 1, "fuzz", map[int32]int64{2: 0}, []int32{0, 1}, 0))) // incremental
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	tt := kmsg.NewCreateTopicsRequestTopic()
	tt.Topic, tt.NumPartitions, tt.ReplicationFactor = "created", 2, 1
	ct.Topics = append(ct.Topics, tt)
	f.Add(body(ct))
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = kmsg.ConfigResourceTypeTopic, "fuzz"
	dc.Resources = append(dc.Resources, dr)
	f.Add(body(dc))
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Version, jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis = 9, "fg", "consumer", 10000
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name = "range"
	jg.Protocols = append(jg.Protocols, jp)
	f.Add(body(jg))
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version, oc.Group, oc.Generation = 8, "fg", -1
	f.Add(body(oc))
	ip := kmsg.NewPtrInitProducerIDRequest()
	txnID := "fz"
	ip.Version, ip.TransactionalID, ip.TransactionTimeoutMillis = 4, &txnID, 60000
	f.Add(body(ip))                                                     // the transaction coordinator
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})                 // KIP-511, null client id
	f.Add([]byte{0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0x80, 0x80, 0x80, 0x80}) // flexible produce, bad tags
	f.Add(make([]byte, 10))
	long := body(metadataReq(12, "x"))
	binary.BigEndian.PutUint16(long[8:], 0x7fff) // client id longer than the frame
	f.Add(long)
	adminSeeds(f, body)
	saslSeeds(f, body)

	o := testOptions(f)
	o.MaxPartitions = 4
	b, err := New(o)
	if err != nil {
		f.Fatal(err)
	}
	if err := b.loadTopics(); err != nil {
		f.Fatal(err)
	}
	b.clusterID = "fuzz"
	gopts := groups.DefaultOptions()
	gopts.Dir = f.TempDir()
	if b.groups, err = groups.New(gopts); err != nil {
		f.Fatal(err)
	}
	if b.txns, err = openTxnCoordinator(b); err != nil { // as Start: transactional InitProducerID reaches it
		f.Fatal(err)
	}
	if err := b.quotas.Open(filepath.Join(o.Dir, quota.FileName)); err != nil { // as Start: AlterClientQuotas stores them
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.closeLogs(); _ = b.groups.Close(); _ = b.txns.close() })
	// Connections on a SASL listener: one not authenticated yet, one in the middle of a
	// SCRAM exchange (SaslAuthenticate bodies reach the SCRAM parser).
	if b.sasl, err = newSASLAuth(SASLOptions{Mechanisms: saslMechanisms, Users: map[string]string{"fuzz": "fuzz"}}); err != nil {
		f.Fatal(err)
	}
	if _, err := b.sasl.loadStored(filepath.Join(o.Dir, scramFile)); err != nil { // as Start: alterations are stored
		f.Fatal(err)
	}
	// An authorizer for a third connection (User:fuzz), so every handler's checks and
	// the ACL APIs' store paths run too; b.acl is set only around that call.
	authz, err := acl.Open(acl.Options{Path: filepath.Join(f.TempDir(), acl.FileName), SuperUsers: []string{"User:root"}})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range authz.Create([]acl.Binding{
		{ResourceType: kmsg.ACLResourceTypeTopic, PatternType: kmsg.ACLResourcePatternTypePrefixed, ResourceName: "fu", Principal: "User:fuzz", Host: "*", Operation: kmsg.ACLOperationAll, Permission: kmsg.ACLPermissionTypeAllow},
		{ResourceType: kmsg.ACLResourceTypeTopic, PatternType: kmsg.ACLResourcePatternTypeLiteral, ResourceName: "fuzz", Principal: "User:*", Host: "*", Operation: kmsg.ACLOperationWrite, Permission: kmsg.ACLPermissionTypeDeny},
		{ResourceType: kmsg.ACLResourceTypeGroup, PatternType: kmsg.ACLResourcePatternTypeLiteral, ResourceName: "*", Principal: "User:fuzz", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow},
		{ResourceType: kmsg.ACLResourceTypeCluster, PatternType: kmsg.ACLResourcePatternTypeLiteral, ResourceName: acl.ClusterName, Principal: "User:fuzz", Host: "127.0.0.1", Operation: kmsg.ACLOperationAlter, Permission: kmsg.ACLPermissionTypeAllow},
	}) {
		if e != nil {
			f.Fatal(e)
		}
	}
	// state is what the broker keeps beyond a request: topics, groups, offsets (brokerState),
	// ACLs and client quotas.
	state := func() string {
		q := b.quotas.Store().Load()
		return brokerState(b) + fmt.Sprint(authz.Describe(acl.Filter{ResourceType: kmsg.ACLResourceTypeAny,
			PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}),
			q.Describe(quota.Filter{User: quota.MatchAny}), q.Describe(quota.Filter{ClientID: quota.MatchAny}))
	}
	saslListener := &listener{Listener: Listener{Name: "SASL", SecurityProtocol: SASLPlaintext}}
	done := make(chan struct{})
	close(done) // a closed connection: long-poll fetches and group joins return at once
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 10 { // the serve loop refuses these before decoding
			return
		}
		c := &conn{b: b, done: done, ctx: ctx, remote: "127.0.0.1:1"}
		f, err := c.handleFrame(frame)
		b.acl = authz
		ac := &conn{b: b, done: done, ctx: ctx, remote: "127.0.0.1:1", principal: "User:fuzz"}
		if af, _ := ac.handleFrame(frame); af != nil {
			af.release()
		}
		b.acl = nil
		// The serve loop reuses the frame's buffer for the next request: nothing the
		// broker keeps (topics, configs, groups, offsets, ACLs) may still point into it.
		before := state()
		for i := range frame {
			frame[i] ^= 0xff
		}
		if after := state(); after != before {
			t.Fatalf("broker state changed with the request's buffer:\nbefore %s\nafter  %s", before, after)
		}
		for i := range frame { // the request again, for the SASL connections
			frame[i] ^= 0xff
		}
		for _, mech := range []string{"", "SCRAM-SHA-256"} {
			sc := &conn{b: b, l: saslListener, done: done, ctx: ctx, remote: "127.0.0.1:1", unauth: true}
			if mech != "" {
				sc.sasl, _ = b.sasl.server(mech)
				sc.saslMech = mech
			}
			if sf, _ := sc.handleFrame(slices.Clone(frame)); sf != nil {
				sf.release()
			}
		}
		if err != nil || f == nil {
			return
		}
		defer f.release()
		resp := f.pieces[0].b
		if len(resp) < 8 || int(binary.BigEndian.Uint32(resp)) != f.size()-4 {
			t.Fatalf("malformed response frame of %d bytes", f.size())
		}
		if corr := binary.BigEndian.Uint32(resp[4:]); corr != binary.BigEndian.Uint32(frame[4:]) {
			t.Fatalf("response correlation id %d, request %d", corr, binary.BigEndian.Uint32(frame[4:]))
		}
	})
}

// brokerState renders what the broker keeps beyond a request: topics with their
// partitions and configs, groups with their members, committed offsets.
func brokerState(b *Broker) string {
	var out []string
	b.mu.RLock()
	for name, t := range b.topics {
		s := fmt.Sprintf("topic %q %q %v;", name, t.name, t.configs)
		for _, p := range t.parts {
			s += fmt.Sprintf(" part %q %d;", p.topic, p.index)
		}
		out = append(out, s)
	}
	b.mu.RUnlock()
	if b.sasl != nil {
		for m, users := range *b.sasl.stored.Load() {
			for u, c := range users {
				out = append(out, fmt.Sprintf("scram %q %q %x %x %x %d;", m, u, c.salt, c.storedKey, c.serverKey, c.iterations))
			}
		}
	}
	slices.Sort(out)
	for _, g := range b.groups.List() {
		d, _ := b.groups.Describe(g.Name)
		out = append(out, fmt.Sprintf("group %q %+v %+v offsets %v;", g.Name, g, d, b.groups.Fetch(g.Name)))
	}
	return strings.Join(out, "\n")
}

// saslSeeds adds the SASL exchange: handshakes for each mechanism and an unknown one,
// SaslAuthenticate with PLAIN and SCRAM messages, good and broken.
func saslSeeds(f *testing.F, body func(kmsg.Request) []byte) {
	for _, m := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI"} {
		for v := int16(0); v <= 1; v++ {
			f.Add(body(saslHandshakeReq(v, m)))
		}
	}
	for v, msg := range []string{"\x00fuzz\x00fuzz", "n,,n=fuzz,r=abcdef", "n,a=f=3Dz,n=f=2Cz,r=x,m=ext", "c=biws,r=abc,p=AAAA", "p=tls-unique,,n=fuzz,r=x"} {
		f.Add(body(saslAuthenticateReq(int16(v%3), []byte(msg))))
	}
}

// adminSeeds adds a request of each admin API served for management tools
// (admin_apis_test.go).
func adminSeeds(f *testing.F, body func(kmsg.Request) []byte) {
	ofle := kmsg.NewPtrOffsetForLeaderEpochRequest()
	ofle.Version, ofle.ReplicaID = 4, -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "fuzz"
	for _, e := range []int32{0, -1, 7, -3} {
		op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		op.CurrentLeaderEpoch, op.LeaderEpoch = 0, e
		ot.Partitions = append(ot.Partitions, op)
	}
	ofle.Topics = append(ofle.Topics, ot)
	f.Add(body(ofle))
	da := kmsg.NewPtrDescribeACLsRequest()
	da.Version, da.ResourceType, da.Operation, da.PermissionType = 3, kmsg.ACLResourceTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	f.Add(body(da))
	ca := kmsg.NewPtrCreateACLsRequest()
	ca.Version = 3
	cc := kmsg.NewCreateACLsRequestCreation()
	cc.ResourceType, cc.ResourceName, cc.Principal, cc.Host = kmsg.ACLResourceTypeTopic, "fuzz", "User:f", "*"
	cc.Operation, cc.PermissionType = kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
	ca.Creations = append(ca.Creations, cc)
	f.Add(body(ca))
	dl := kmsg.NewPtrDeleteACLsRequest()
	dl.Version = 3
	df := kmsg.NewDeleteACLsRequestFilter()
	df.ResourceType, df.Operation, df.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	dl.Filters = append(dl.Filters, df)
	f.Add(body(dl))
	dq := kmsg.NewPtrDescribeClientQuotasRequest()
	dq.Version = 1
	qc := kmsg.NewDescribeClientQuotasRequestComponent()
	qc.EntityType, qc.MatchType, qc.Match = "user", kmsg.QuotasMatchTypeExact, kmsg.StringPtr("fuzz")
	dq.Components = append(dq.Components, qc)
	f.Add(body(dq))
	aq := kmsg.NewPtrAlterClientQuotasRequest()
	aq.Version = 1
	ae := kmsg.NewAlterClientQuotasRequestEntry()
	ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
	ent.Type, ent.Name = "user", kmsg.StringPtr("fuzz")
	op := kmsg.NewAlterClientQuotasRequestEntryOp()
	op.Key, op.Value = "producer_byte_rate", 1024
	ae.Entity, ae.Ops = append(ae.Entity, ent), append(ae.Ops, op)
	aq.Entries = append(aq.Entries, ae, ae)
	f.Add(body(aq))
	lr := kmsg.NewPtrListPartitionReassignmentsRequest()
	lrt := kmsg.NewListPartitionReassignmentsRequestTopic()
	lrt.Topic, lrt.Partitions = "fuzz", []int32{0, 1}
	lr.Topics = append(lr.Topics, lrt)
	f.Add(body(lr))
	ar := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	ar.Version = 1
	art := kmsg.NewAlterPartitionAssignmentsRequestTopic()
	art.Topic = "fuzz"
	for _, rs := range [][]int32{{0}, nil, {0, 0}, {}} {
		arp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		arp.Replicas = rs
		art.Partitions = append(art.Partitions, arp)
	}
	ar.Topics = append(ar.Topics, art)
	f.Add(body(ar))
	el := kmsg.NewPtrElectLeadersRequest()
	el.Version, el.ElectionType = 2, 1
	elt := kmsg.NewElectLeadersRequestTopic()
	elt.Topic, elt.Partitions = "fuzz", []int32{0, 0, 9}
	el.Topics = append(el.Topics, elt)
	f.Add(body(el))
	ds := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"fuzz", "fuzz", ""} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		ds.Users = append(ds.Users, u)
	}
	f.Add(body(ds))
	as := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	asd := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	asd.Name, asd.Mechanism = "fuzz", 1
	asu := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	asu.Name, asu.Mechanism, asu.Iterations, asu.Salt, asu.SaltedPassword = "fuzz", 2, 4096, []byte("salt"), []byte("pw")
	as.Deletions, as.Upsertions = append(as.Deletions, asd), append(as.Upsertions, asu)
	f.Add(body(as))
	// An upsertion that is stored (a user not configured), its deletion, and the errors:
	// iterations out of range, an unknown mechanism, a user in both lists.
	for _, tc := range []struct {
		del, up  string
		mech     int8
		iter     int32
		salt, pw []byte
	}{
		{"", "fz", 1, 8192, []byte("salt"), []byte("salted-password")},
		{"fz", "", 1, 0, nil, nil},
		{"", "fz", 2, 100, []byte("s"), []byte("p")},
		{"", "fz", 2, 20000, []byte("s"), []byte("p")},
		{"fz", "", 3, 0, nil, nil},
		{"fz", "fz", 2, 4096, []byte("s"), []byte("p")},
		{"", "", 1, 4096, []byte{}, []byte{}},
	} {
		as := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		if tc.del != "" {
			d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
			d.Name, d.Mechanism = tc.del, tc.mech
			as.Deletions = append(as.Deletions, d)
		}
		if tc.iter != 0 {
			u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			u.Name, u.Mechanism, u.Iterations, u.Salt, u.SaltedPassword = tc.up, tc.mech, tc.iter, tc.salt, tc.pw
			as.Upsertions = append(as.Upsertions, u)
		}
		f.Add(body(as))
	}
	ld := kmsg.NewPtrDescribeLogDirsRequest() // v0, null topics: every partition
	f.Add(body(ld))
}
