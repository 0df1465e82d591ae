package servers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron/internal/testserver"
)

// VM is a single-node VictoriaMetrics started as internal/testserver
// starts it for the tests (loopback port, own data directory,
// -dedup.minScrapeInterval=1ms so re-delivered samples are stored once).
// Its methods are not safe for concurrent use with Stop.
type VM struct {
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

// VMBinary returns the VictoriaMetrics binary: $NOVACRON_VICTORIA_METRICS,
// else victoria-metrics in PATH.
func VMBinary() (string, error) {
	if p := os.Getenv(testserver.VictoriaMetricsBinaryEnv); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("victoria-metrics")
	if err != nil {
		return "", fmt.Errorf("victoria-metrics binary not found (apt-get install victoria-metrics, or set %s): %w",
			testserver.VictoriaMetricsBinaryEnv, err)
	}
	return p, nil
}

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago;
// the starters retry when another process takes it meanwhile.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartVM starts VictoriaMetrics on a free port with its data and log
// under dir and waits until /health answers. The caller must Stop it.
func StartVM(dir string) (*VM, error) {
	bin, err := VMBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // another process may take the picked port meanwhile
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		vm := &VM{dir: dir, port: port}
		if lastErr = vm.start(bin); lastErr == nil {
			return vm, nil
		}
	}
	return nil, lastErr
}

func (vm *VM) start(bin string) error {
	logf, err := os.OpenFile(filepath.Join(vm.dir, "victoria-metrics.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin,
		"-httpListenAddr="+vm.Addr(),
		"-storageDataPath="+filepath.Join(vm.dir, "data"),
		"-retentionPeriod=100y",
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-dedup.minScrapeInterval=1ms",
		"-loggerLevel=WARN",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("victoria-metrics on %s exited at startup: %s", vm.Addr(), TailFile(filepath.Join(vm.dir, "victoria-metrics.log")))
		default:
		}
		if resp, err := http.Get(vm.URL() + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				vm.cmd, vm.exited = cmd, exited
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("victoria-metrics on %s not healthy after 30s", vm.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Addr returns host:port of the HTTP listener.
func (vm *VM) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(vm.port)) }

// URL returns the base URL, http://host:port.
func (vm *VM) URL() string { return "http://" + vm.Addr() }

// WriteURL returns the remote-write endpoint.
func (vm *VM) WriteURL() string { return vm.URL() + "/api/v1/write" }

// PID returns the server's process id.
func (vm *VM) PID() int { return vm.cmd.Process.Pid }

// Stop stops the server gracefully (SIGINT), killing it after 30s. Safe
// to call twice.
func (vm *VM) Stop() {
	if vm.cmd == nil {
		return
	}
	_ = vm.cmd.Process.Signal(os.Interrupt)
	select {
	case <-vm.exited:
	case <-time.After(30 * time.Second):
		_ = vm.cmd.Process.Kill()
		<-vm.exited
	}
	vm.cmd = nil
}

// ForceFlush makes the samples written so far visible to queries.
func (vm *VM) ForceFlush() error {
	resp, err := http.Get(vm.URL() + "/internal/force_flush")
	if err != nil {
		return fmt.Errorf("force flush: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force flush: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Kafka is a single-node Apache Kafka (combined broker and KRaft
// controller) configured as internal/testserver configures it: topics are
// not created automatically, one partition by default. Its methods are not
// safe for concurrent use with Stop.
type Kafka struct {
	dir, libs  string
	brokerPort int
	ctrlPort   int
	cmd        *exec.Cmd
	exited     chan struct{}
}

// StartKafka fetches the broker jars when missing (scripts/fetch-kafka.sh
// through testserver.KafkaLibs), formats a KRaft log directory under dir
// and starts the broker. The caller must Stop it.
func StartKafka(dir string) (*Kafka, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("java not found (apt-get install openjdk-17-jre-headless): %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	libs, err := testserver.KafkaLibs()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 {
		bp, err1 := FreePort()
		cp, err2 := FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if bp == cp {
			continue
		}
		k := &Kafka{dir: dir, libs: libs, brokerPort: bp, ctrlPort: cp}
		if lastErr = k.format(); lastErr != nil {
			return nil, lastErr
		}
		if lastErr = k.start(); lastErr == nil {
			return k, nil
		}
		_ = os.RemoveAll(filepath.Join(dir, "data"))
	}
	return nil, lastErr
}

// Brokers returns the broker's address, host:port.
func (k *Kafka) Brokers() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.brokerPort))}
}

func (k *Kafka) format() error {
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%[3]s
auto.create.topics.enable=false
num.partitions=1
num.network.threads=2
num.io.threads=2
background.threads=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
`, k.brokerPort, k.ctrlPort, filepath.Join(k.dir, "data"))
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
`, filepath.Join(k.dir, "server.log"))
	if err := os.WriteFile(filepath.Join(k.dir, "server.properties"), []byte(props), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(k.dir, "log4j2.properties"), []byte(log4j), 0o644); err != nil {
		return err
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	cmd := exec.Command("java", append(k.jvmArgs("256m"), "kafka.tools.StorageTool", "format",
		"-t", base64.RawURLEncoding.EncodeToString(id[:]), "-c", filepath.Join(k.dir, "server.properties"),
		"--standalone", "--ignore-formatted")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format Kafka storage in %s: %w: %s", k.dir, err, Tail(out, 2000))
	}
	return nil
}

func (k *Kafka) jvmArgs(heap string) []string {
	return []string{
		"-Xmx" + heap, "-Xms64m",
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(k.dir, "log4j2.properties"),
		"-cp", filepath.Join(k.libs, "*"),
	}
}

func (k *Kafka) start() error {
	out, err := os.OpenFile(filepath.Join(k.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", append(k.jvmArgs("512m"), "kafka.Kafka", filepath.Join(k.dir, "server.properties"))...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start Kafka: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	if err := k.waitReady(exited); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return err
	}
	k.cmd, k.exited = cmd, exited
	return nil
}

func (k *Kafka) waitReady(exited <-chan struct{}) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("kafka on %s exited at startup: %s", k.Brokers()[0], TailFile(filepath.Join(k.dir, "stdout.log")))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := adm.Metadata(ctx)
		cancel()
		if err == nil && len(m.Brokers) > 0 && m.Controller >= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka on %s not ready after 90s (last error %v)", k.Brokers()[0], err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PID returns the broker's (JVM's) process id.
func (k *Kafka) PID() int { return k.cmd.Process.Pid }

// Stop kills the broker's process group. Safe to call twice.
func (k *Kafka) Stop() {
	if k.cmd == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
	<-k.exited
	k.cmd = nil
}

// Version reads the broker's version from its jar's name.
func (k *Kafka) Version() string {
	matches, _ := filepath.Glob(filepath.Join(k.libs, "kafka_*-*.jar"))
	for _, m := range matches {
		base := strings.TrimSuffix(filepath.Base(m), ".jar")
		if i := strings.LastIndexByte(base, '-'); i > 0 && !strings.Contains(base[i:], "test") {
			return base[i+1:]
		}
	}
	return testserver.KafkaVersion
}

// Tail returns the last n bytes of b.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// TailFile returns the end of a log file, or "(no log)".
func TailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	return string(Tail(b, 1500))
}
