package main

import (
	"github.com/novacron/novacron/benchmarks/internal/servers"
)

// The servers are started by benchmarks/internal/servers, which the
// stream benchmark shares; these adapters keep this command's names.

// vmServer is a single-node VictoriaMetrics (see servers.VM).
type vmServer struct{ *servers.VM }

// kafkaServer is a single-node Apache Kafka broker (see servers.Kafka).
type kafkaServer struct{ *servers.Kafka }

func vmBinary() (string, error) { return servers.VMBinary() }

// startVM starts VictoriaMetrics on a free port with its data under dir
// and waits until /health answers.
func startVM(dir string) (*vmServer, error) {
	vm, err := servers.StartVM(dir)
	if err != nil {
		return nil, err
	}
	return &vmServer{vm}, nil
}

func (vm *vmServer) url() string       { return vm.URL() }
func (vm *vmServer) writeURL() string  { return vm.WriteURL() }
func (vm *vmServer) pid() int          { return vm.PID() }
func (vm *vmServer) stop()             { vm.Stop() }
func (vm *vmServer) forceFlush() error { return vm.ForceFlush() }

// startKafka fetches the broker jars when missing, formats a KRaft log
// directory under dir and starts the broker.
func startKafka(dir string) (*kafkaServer, error) {
	k, err := servers.StartKafka(dir)
	if err != nil {
		return nil, err
	}
	return &kafkaServer{k}, nil
}

func (k *kafkaServer) brokers() []string { return k.Brokers() }
func (k *kafkaServer) pid() int          { return k.PID() }
func (k *kafkaServer) stop()             { k.Stop() }
func (k *kafkaServer) version() string   { return k.Version() }

func tail(b []byte, n int) []byte { return servers.Tail(b, n) }
