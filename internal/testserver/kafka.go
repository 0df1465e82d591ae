package testserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaVersion is the Apache Kafka broker the tests run; the jars come
// from Maven Central through scripts/fetch-kafka.sh.
const KafkaVersion = "4.4.0"

// KafkaBrokersEnv names the environment variable that points the tests at
// running brokers (comma-separated host:port) instead of starting one.
const KafkaBrokersEnv = "NOVACRON_TEST_KAFKA_BROKERS"

// kafkaStartTimeout bounds one broker start, from the JVM launch to the
// first successful metadata request.
const kafkaStartTimeout = 60 * time.Second

// KafkaBroker is a single-node Apache Kafka (combined broker and KRaft
// controller) on 127.0.0.1 with its log directory in a temporary folder.
type KafkaBroker struct {
	libs       string
	dir        string
	brokerPort int
	ctrlPort   int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	sharedKafkaOnce sync.Once
	sharedKafka     *KafkaBroker
	sharedKafkaErr  error

	allKafkasMu sync.Mutex
	allKafkas   []*KafkaBroker
)

// Kafka returns the seed brokers of the Apache Kafka shared by every test
// of the binary, starting it on first use (or the brokers named by
// NOVACRON_TEST_KAFKA_BROKERS). Tests sharing it must use their own topic
// and group names. It runs until StopAll, which TestMain must call after
// m.Run. When it cannot be had, tb fails or skips through Unavailable.
func Kafka(tb testing.TB) []string {
	tb.Helper()
	if env := os.Getenv(KafkaBrokersEnv); env != "" {
		return strings.Split(env, ",")
	}
	sharedKafkaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "novacron-kafka-")
		if err != nil {
			sharedKafkaErr = err
			return
		}
		sharedKafka, sharedKafkaErr = startKafka(dir)
		if sharedKafkaErr != nil {
			_ = os.RemoveAll(dir)
		}
	})
	if sharedKafkaErr != nil {
		Unavailable(tb, "Apache Kafka", sharedKafkaErr)
	}
	return sharedKafka.Brokers()
}

// KafkaProcess starts a broker of tb's own, stopped when tb ends, for
// tests that stop and restart it (Stop, Start keep its ports and data).
func KafkaProcess(tb testing.TB) *KafkaBroker {
	tb.Helper()
	k, err := startKafka(tb.TempDir())
	if err != nil {
		Unavailable(tb, "Apache Kafka", err)
	}
	tb.Cleanup(func() { k.Stop() })
	return k
}

// StopAll stops every server this package started (Kafka brokers,
// VictoriaMetrics, libvirtd, moto, PostgreSQL, Alertmanager) and removes
// the shared ones' data. Call it from
// TestMain after m.Run; the servers also die with the test binary.
func StopAll() {
	allKafkasMu.Lock()
	ks := allKafkas
	allKafkas = nil
	allKafkasMu.Unlock()
	for _, k := range ks {
		k.Stop()
	}
	if sharedKafka != nil {
		_ = os.RemoveAll(sharedKafka.dir)
	}
	StopVictoriaMetrics()
	StopLibvirt()
	StopMoto()
	StopPostgres()
	StopAlertmanager()
}

// Brokers returns the broker's bootstrap address.
func (k *KafkaBroker) Brokers() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.brokerPort))}
}

// KafkaLibs returns the directory of the broker jars, running
// scripts/fetch-kafka.sh when they are missing.
func KafkaLibs() (string, error) {
	libs := filepath.Join(CacheDir(), "kafka-"+KafkaVersion, "libs")
	if _, err := os.Stat(filepath.Join(CacheDir(), "kafka-"+KafkaVersion, ".complete")); err == nil {
		return libs, nil
	}
	script := filepath.Join(RepoRoot(), "scripts", "fetch-kafka.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "KAFKA_VERSION="+KafkaVersion, "NOVACRON_TEST_CACHE="+CacheDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("fetch Kafka %s jars (%s): %w: %s", KafkaVersion, script, err, kafkaTail(out, 2000))
	}
	return libs, nil
}

func startKafka(dir string) (*KafkaBroker, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("java not found (apt-get install openjdk-17-jre-headless): %w", err)
	}
	libs, err := KafkaLibs()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // another process may take a picked port meanwhile
		bp, err1 := kafkaFreePort()
		cp, err2 := kafkaFreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if bp == cp {
			continue
		}
		k := &KafkaBroker{libs: libs, dir: dir, brokerPort: bp, ctrlPort: cp}
		if lastErr = k.format(); lastErr != nil {
			return nil, lastErr
		}
		if lastErr = k.Start(); lastErr == nil {
			allKafkasMu.Lock()
			allKafkas = append(allKafkas, k)
			allKafkasMu.Unlock()
			return k, nil
		}
		_ = os.RemoveAll(k.dataDir())
	}
	return nil, lastErr
}

func kafkaFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (k *KafkaBroker) dataDir() string    { return filepath.Join(k.dir, "data") }
func (k *KafkaBroker) propsPath() string  { return filepath.Join(k.dir, "server.properties") }
func (k *KafkaBroker) log4jPath() string  { return filepath.Join(k.dir, "log4j2.properties") }
func (k *KafkaBroker) logPath() string    { return filepath.Join(k.dir, "server.log") }
func (k *KafkaBroker) stdoutPath() string { return filepath.Join(k.dir, "stdout.log") }

// format writes the configuration and formats the KRaft storage with a
// random cluster id as a standalone controller quorum.
func (k *KafkaBroker) format() error {
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
`, k.brokerPort, k.ctrlPort, k.dataDir())
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
`, k.logPath())
	if err := os.WriteFile(k.propsPath(), []byte(props), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(k.log4jPath(), []byte(log4j), 0o644); err != nil {
		return err
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	clusterID := base64.RawURLEncoding.EncodeToString(id[:])
	cmd := exec.Command("java", append(k.jvmArgs("256m"), "kafka.tools.StorageTool",
		"format", "-t", clusterID, "-c", k.propsPath(), "--standalone", "--ignore-formatted")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("format Kafka storage in %s: %w: %s", k.dataDir(), err, kafkaTail(out, 2000))
	}
	return nil
}

func (k *KafkaBroker) jvmArgs(heap string) []string {
	return []string{
		"-Xmx" + heap, "-Xms64m",
		"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + k.log4jPath(),
		"-cp", filepath.Join(k.libs, "*"),
	}
}

// Start starts the broker (again) on its ports and data and waits until
// it answers a metadata request. It does nothing when it is running.
func (k *KafkaBroker) Start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(k.stdoutPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("java", append(k.jvmArgs("512m"), "kafka.Kafka", k.propsPath())...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start Kafka: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	if err := k.waitReady(exited); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return err
	}
	k.cmd, k.exited = cmd, exited
	return nil
}

func (k *KafkaBroker) waitReady(exited <-chan struct{}) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(kafkaStartTimeout)
	for {
		select {
		case <-exited:
			return fmt.Errorf("kafka on %s exited at startup: %s", k.Brokers()[0], k.logTail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := adm.Metadata(ctx)
		cancel()
		if err == nil && len(m.Brokers) > 0 && m.Controller >= 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kafka on %s not ready after %s (last error %v): %s", k.Brokers()[0], kafkaStartTimeout, err, k.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the broker's process group (its data stays for Start). It
// does nothing when the broker is not running.
func (k *KafkaBroker) Stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cmd == nil {
		return
	}
	_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
	<-k.exited
	k.cmd, k.exited = nil, nil
}

func (k *KafkaBroker) logTail() string {
	var b []byte
	for _, p := range []string{k.stdoutPath(), k.logPath()} {
		if data, err := os.ReadFile(p); err == nil {
			b = append(b, kafkaTail(data, 1500)...)
		}
	}
	if len(b) == 0 {
		return "(no log)"
	}
	return string(b)
}

func kafkaTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Kcat returns the path of the kcat (formerly kafkacat) command line
// client, failing or skipping tb through Unavailable when it is missing
// (Debian package kcat).
func Kcat(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	Unavailable(tb, "kcat", errors.New("neither kcat nor kafkacat in PATH (apt-get install kcat)"))
	return ""
}
