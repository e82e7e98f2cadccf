package main

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/broker/storage"
	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/internal/admin"
)

func init() {
	register(func(a *app) *cobra.Command {
		return runsUntilStopped(&cobra.Command{
			Use:   "broker",
			Short: "Run the Kafka-protocol broker alone (listens on broker.listen, 127.0.0.1:9092 by default, and on broker.listeners)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				reg := admin.NewRegistry()
				b, err := broker.New(brokerOptions(a.cfg, reg, a.log))
				if err != nil {
					return err
				}
				return a.serve(cmd.Context(), reg, nil, b)
			},
		})
	})
}

// brokerOptions turns the broker section of the config into broker.Options; `tagpipe up`
// uses it too.
func brokerOptions(cfg *config.Config, reg *prometheus.Registry, log *slog.Logger) broker.Options {
	c := cfg.Broker
	o := broker.DefaultOptions()
	o.Dir = cfg.Path("broker")
	o.Listen = c.Listen
	o.AdvertisedHost, o.AdvertisedPort = c.AdvertisedHost, c.AdvertisedPort
	for _, l := range c.Listeners {
		o.Listeners = append(o.Listeners, broker.Listener{Name: l.Name, Listen: l.Listen,
			AdvertisedHost: l.AdvertisedHost, AdvertisedPort: l.AdvertisedPort, SecurityProtocol: l.Protocol()})
	}
	o.TLS = broker.TLSOptions{CertFile: c.SSLCertFile, KeyFile: c.SSLKeyFile, CAFile: c.SSLCAFile, ClientAuth: c.SSLClientAuth}
	o.SASL = broker.SASLOptions{Mechanisms: c.SASLEnabledMechanisms, Users: c.SASLUsers}
	o.Authorizer = broker.AuthorizerOptions{Mode: c.Authorizer, SuperUsers: c.SuperUsers, AllowEveryoneIfNoACLFound: c.AllowEveryoneIfNoACLFound}
	o.Quotas.WindowNum, o.Quotas.WindowSize = c.QuotaWindowNum, c.QuotaWindowSize
	o.NodeID = c.NodeID
	o.AutoCreateTopics, o.DefaultPartitions = c.AutoCreateTopics, c.DefaultPartitions
	o.RetentionMS, o.RetentionBytes = c.RetentionMS, c.RetentionBytes
	o.CompressionType = c.CompressionType
	o.SegmentBytes, o.SegmentMS = c.SegmentBytes, c.SegmentMS
	o.MaxMessageBytes = c.MaxMessageBytes
	o.RetentionCheckInterval = c.RetentionCheckInterval
	o.CleanerBackoff = c.LogCleanerBackoff
	o.MaxRequestBytes = c.MaxRequestBytes
	o.MaxConnections, o.MaxConnectionsPerIP = c.MaxConnections, c.MaxConnectionsPerIP
	o.MaxConnectionsPerIPOverrides, o.MaxConnectionCreationRate = c.MaxConnectionsPerIPOverrides, c.MaxConnectionCreationRate
	o.MaxIncrementalFetchSessionCacheSlots = c.MaxIncrementalFetchSessionCacheSlots
	o.Groups.InitialRebalanceDelay = c.GroupInitialRebalanceDelay
	o.Groups.MinSessionTimeout, o.Groups.MaxSessionTimeout = c.GroupMinSessionTimeout, c.GroupMaxSessionTimeout
	o.Groups.OffsetsRetention = c.OffsetsRetention
	o.Groups.ConsumerSessionTimeout, o.Groups.ConsumerHeartbeatInterval = c.GroupConsumerSessionTimeout, c.GroupConsumerHeartbeatInterval
	o.OffsetsTopicPartitions = c.OffsetsTopicNumPartitions
	o.TransactionMaxTimeout, o.TransactionAbortInterval = c.TransactionMaxTimeout, c.TransactionAbortInterval
	o.TransactionalIDExpiration = c.TransactionalIDExpiration
	switch c.Flush {
	case "os", "always":
		o.Flush = storage.FlushPolicy{Mode: c.Flush}
	default:
		d, _ := time.ParseDuration(c.Flush) // validated by config
		o.Flush = storage.FlushPolicy{Mode: "interval", Interval: d}
	}
	o.Registry = reg
	o.Logger = log
	return o
}
