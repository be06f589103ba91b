//go:build cluster

package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/proctest"
)

// minimalEnv is what a child process inherits from the test's environment:
// nothing of a developer's service configuration leaks in.
func minimalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GODEBUG", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// process is a child process with its output in a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProcess runs bin in dir with env, its output going to dir/name.log.
// stdout, when not nil, receives the process's standard output instead.
func startProcess(t *testing.T, name, bin, dir string, args, env []string, stdout *os.File) *process {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // where no .env file is
	cmd.Env = append(minimalEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	require.NoError(t, cmd.Start(), "start %s", name)
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p
}

// stop sends SIGTERM and waits, then SIGKILL after 15 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of the process's log other than access
// lines (one per request, and thousands of them).
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if !bytes.Contains(l, []byte("msg=request ")) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// startDatabase runs cmd/embeddb on files under dir and returns it with the
// URI it prints once it accepts connections.
func startDatabase(t *testing.T, bin, dir string) (*process, string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	p := startProcess(t, "embeddb", bin, dir, []string{"-dir", filepath.Join(dir, "db"), "-addr", proctest.FreeAddr(t)}, nil, w)
	w.Close()
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(r)
		if s.Scan() {
			line <- strings.TrimSpace(s.Text())
		}
		close(line)
		r.Close()
	}()
	select {
	case uri := <-line:
		require.True(t, strings.HasPrefix(uri, "mongodb://"), "embeddb printed %q; log:\n%s", uri, p.tail(20))
		return p, uri
	case <-time.After(60 * time.Second):
		p.stop()
		t.Fatalf("embeddb printed no URI in 60 s; log:\n%s", p.tail(20))
		return nil, ""
	}
}

// waitReady waits until the service's /readyz answers 200.
func waitReady(t *testing.T, p *process, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			t.Fatalf("%s exited before it was ready; log:\n%s", p.name, p.tail(30))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s; log:\n%s", p.name, p.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serviceEnv is the configuration every instance shares; addr and dataDir
// are its own.
func serviceEnv(mongoURL, secret, addr, dataDir string, staleness time.Duration) []string {
	return []string{
		"MONGO_URL=" + mongoURL,
		"MONGO_DB_NAME=" + dbName,
		"SECRET_KEY=" + secret,
		"HTTP_ADDR=" + addr,
		"DATA_DIR=" + dataDir,
		// Read by the directory and the shared rate-limit store once they
		// exist; ignored by a service that does not know them.
		"DIRECTORY_STALENESS=" + staleness.String(),
		"RATE_LIMIT_STORE=database",
		"BCRYPT_COST=4",
		"LEASE_TTL=" + leaseTTL.String(),
		fmt.Sprintf("LOGIN_RATE_PER_MIN=%d", loginLimit),
		"WRITE_RATE_PER_MIN=0",
		// The test is the only client, on loopback: it names each logical
		// client by X-Forwarded-For, so that the per-IP login limit counts
		// clients, not the one test process.
		"TRUSTED_PROXIES=127.0.0.1/32",
		"LOG_FORMAT=text",
		"LOG_LEVEL=info",
	}
}
