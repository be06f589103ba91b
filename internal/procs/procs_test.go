package procs

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary is also the child the tests start: a service when
// PROCS_HELPER is in its environment, cmd/embeddb when started with -dir.
func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 2 && os.Args[1] == "-dir":
		fakeDatabase(filepath.Base(os.Args[2]))
	case os.Getenv("PROCS_HELPER") != "":
		fakeService(os.Getenv("PROCS_HELPER"))
	}
	os.Exit(m.Run())
}

// fakeService exits at once with status 3 (mode "exit"), or serves /readyz
// on HTTP_ADDR, not ready for its first three probes, logging as the
// service does.
func fakeService(mode string) {
	fmt.Fprintf(os.Stderr, "level=INFO msg=starting leak=%q\n", os.Getenv("PROCS_LEAK"))
	if mode == "exit" {
		os.Exit(3)
	}
	probes := 0
	http.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(os.Stderr, "level=INFO msg=request path=%s\n", r.URL.Path)
		if probes++; probes <= 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	fmt.Fprintln(os.Stderr, `{"level":"INFO","msg":"request","path":"/x"}`)
	fmt.Fprintln(os.Stderr, "level=INFO msg=listening")
	_ = http.ListenAndServe(os.Getenv("HTTP_ADDR"), nil)
	os.Exit(1)
}

// fakeDatabase prints a URI (mode "uri") or something else, and waits.
func fakeDatabase(mode string) {
	if mode == "uri" {
		fmt.Println("mongodb://127.0.0.1:1/")
	} else {
		fmt.Println("no database here")
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}

func TestServiceLifecycle(t *testing.T) {
	t.Setenv("PROCS_LEAK", "from the caller's environment")
	dir := t.TempDir()
	addr, err := FreeAddr()
	require.NoError(t, err)
	p, err := Start("svc", os.Args[0], dir, nil, []string{"PROCS_HELPER=serve", "HTTP_ADDR=" + addr})
	require.NoError(t, err)
	defer p.Kill()
	require.NoError(t, p.WaitReady(context.Background(), "http://"+addr, 30*time.Second))
	require.NoError(t, p.Alive())
	assert.Positive(t, p.Pid())
	assert.Equal(t, filepath.Join(dir, "svc.log"), p.Log)

	tail := p.Tail(10)
	assert.Contains(t, tail, `leak=""`, "the child's environment is minimal")
	assert.Contains(t, tail, "msg=listening")
	assert.NotContains(t, tail, "msg=request", "access lines are left out")
	assert.NotContains(t, tail, `"msg":"request"`, "access lines are left out")
	assert.Equal(t, "level=INFO msg=listening", p.Tail(1))

	start := time.Now()
	p.Stop()
	assert.Less(t, time.Since(start), StopGrace, "SIGTERM was enough")
	assert.True(t, p.Exited())
	assert.ErrorContains(t, p.Alive(), "svc exited (signal: terminated)")

	// A restart under the same name appends to the log.
	p, err = Start("svc", os.Args[0], dir, nil, []string{"PROCS_HELPER=serve", "HTTP_ADDR=" + addr})
	require.NoError(t, err)
	require.NoError(t, p.WaitReady(context.Background(), "http://"+addr, 30*time.Second))
	p.Kill()
	assert.ErrorContains(t, p.Alive(), "signal: killed")
	b, err := os.ReadFile(p.Log)
	require.NoError(t, err)
	assert.Equal(t, 2, strings.Count(string(b), "msg=listening"), "both runs in one log")
}

func TestWaitReadyNoticesExit(t *testing.T) {
	dir := t.TempDir()
	p, err := Start("svc", os.Args[0], dir, nil, []string{"PROCS_HELPER=exit"})
	require.NoError(t, err)
	start := time.Now()
	err = p.WaitReady(context.Background(), "http://127.0.0.1:1", time.Minute)
	assert.ErrorContains(t, err, "svc exited before it was ready (exit status 3); see "+p.Log)
	assert.Less(t, time.Since(start), 30*time.Second)

	p, err = Start("slow", os.Args[0], dir, nil, []string{"PROCS_HELPER=serve", "HTTP_ADDR=127.0.0.1:1"})
	require.NoError(t, err)
	defer p.Kill()
	err = p.WaitReady(context.Background(), "http://127.0.0.1:1", 200*time.Millisecond)
	assert.ErrorContains(t, err, "slow not ready after 200ms")
}

func TestStartDatabase(t *testing.T) {
	dir := t.TempDir()
	p, uri, err := StartDatabase(context.Background(), os.Args[0], dir, filepath.Join(dir, "uri"))
	require.NoError(t, err)
	assert.Equal(t, "mongodb://127.0.0.1:1/", uri)
	p.Stop()

	_, _, err = StartDatabase(context.Background(), os.Args[0], dir, filepath.Join(dir, "nouri"))
	assert.ErrorContains(t, err, `embeddb printed "no database here"`)
}

func TestFound(t *testing.T) {
	p := Found("server", os.Getpid())
	assert.Equal(t, os.Getpid(), p.Pid())
	assert.False(t, p.Exited())
	require.NoError(t, p.Alive())
	p.Stop() // leaves it alone
	p.Kill()
	_, err := CPUTime(p.Pid())
	require.NoError(t, err)
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.test/hello\n\ngo 1.22\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "cmd", "hello"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "cmd", "hello", "main.go"),
		[]byte("package main\n\nfunc main() { println(\"hello\") }\n"), 0o644))
	out := t.TempDir()
	bin, err := Build(context.Background(), root, "./cmd/hello", out, "-trimpath")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "hello"), bin)
	_, err = os.Stat(bin)
	require.NoError(t, err)

	_, err = Build(context.Background(), root, "./cmd/nothing", out)
	assert.ErrorContains(t, err, "go build ./cmd/nothing")
}
