// Package procs runs the service's binaries as processes of their own, for
// the black-box tests (test/crash, test/cluster) and the load harness
// (cmd/orgbench): it builds a main package, starts a binary in a minimal
// environment with its output in a log file, starts cmd/embeddb and reads
// the URI it prints, waits for a service's /readyz while noticing an early
// exit, stops (SIGTERM, then SIGKILL) or kills it, and reads a process's
// CPU time and peak memory. It depends on no testing package; proctest
// wraps it for tests.
package procs

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopGrace = 15 * time.Second

// Process is a process started by Start, with its output in a log file, or
// a process found running (Found), which can only be measured.
type Process struct {
	Name string
	Log  string // path of the log file; "" for a process found running
	pid  int
	cmd  *exec.Cmd     // nil for a process found running
	done chan struct{} // closed once the process has exited
	err  error         // how it exited; valid once done is closed
}

// Build compiles the main package pkg (as "./cmd/orgservice") of the module
// at root into dir and returns the binary's path. flags go to go build
// (as "-race").
func Build(ctx context.Context, root, pkg, dir string, flags ...string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg))
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// goTool finds the go command: on PATH, else the one of this toolchain.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// minimalEnv returns the environment of a child process: what it needs of
// the caller's (PATH, HOME, TMPDIR and the Go runtime's settings), so that
// nothing of a developer's service configuration leaks in, then extra.
func minimalEnv(extra ...string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GODEBUG", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// Start runs bin with args in dir (the caller's work directory, so that no
// .env file of the repository is read), in a minimal environment — PATH,
// HOME, TMPDIR and the Go runtime's settings of the caller's — plus env.
// Its output is appended to the log file dir/name.log, so that a restart
// under the same name continues it.
func Start(name, bin, dir string, args, env []string) (*Process, error) {
	return start(name, bin, dir, args, env, nil)
}

// start is Start with the standard output going to stdout when it is not
// nil.
func start(name, bin, dir string, args, env []string, stdout *os.File) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = minimalEnv(env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Found returns a process the caller did not start, by its pid, to
// measure: Stop and Kill leave it alone, and it never counts as exited.
func Found(name string, pid int) *Process {
	return &Process{Name: name, pid: pid}
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.pid }

// Exited reports whether a started process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done: // never for a process found running: done is nil
		return true
	default:
		return false
	}
}

// Alive returns nil while the process runs, and once it has exited an
// error saying how, naming its log.
func (p *Process) Alive() error {
	if !p.Exited() {
		return nil
	}
	return fmt.Errorf("%s exited (%v); see %s", p.Name, p.err, p.Log)
}

// Stop ends a started process: SIGTERM, then SIGKILL after StopGrace; it
// returns once the process has exited.
func (p *Process) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopGrace):
		p.Kill()
	}
}

// Kill sends SIGKILL to a started process and returns once it has exited.
func (p *Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Tail returns the last n lines of the process's log other than access
// lines (one per request, and thousands of them), in the text or the JSON
// log format.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if !bytes.Contains(l, []byte("msg=request ")) && !bytes.Contains(l, []byte(`"msg":"request"`)) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
