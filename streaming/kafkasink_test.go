package streaming

import "testing"

func TestKafkaSinkOptionsChecked(t *testing.T) {
	for _, o := range []KafkaSinkOptions{{Topic: "t"}, {Brokers: []string{"127.0.0.1:1"}}, {Brokers: []string{"127.0.0.1:1"}, Topic: "t", Compression: "brotli"}} {
		if k, err := NewKafkaSink(o); err == nil {
			k.Close()
			t.Errorf("%+v accepted", o)
		}
	}
}
