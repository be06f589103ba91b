// Package proctest wraps procs for black-box tests that run the service's
// binaries as processes of their own (test/crash, test/cluster): each
// helper fails the test where procs would return an error, with the tail
// of the process's log.
package proctest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/procs"
)

// Build compiles the main package pkg (as "./cmd/orgservice") of the module
// at root, as seen from the test's directory, into dir and returns its path.
func Build(t testing.TB, root, pkg, dir string) string {
	t.Helper()
	bin, err := procs.Build(context.Background(), root, pkg, dir)
	require.NoError(t, err)
	return bin
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := procs.FreeAddr()
	require.NoError(t, err)
	return addr
}

// Start runs bin as procs.Start does; the caller stops it.
func Start(t testing.TB, name, bin, dir string, args, env []string) *procs.Process {
	t.Helper()
	p, err := procs.Start(name, bin, dir, args, env)
	require.NoError(t, err)
	return p
}

// StartDatabase runs cmd/embeddb (the binary bin) on files under dir/db
// until the test ends, and returns it with its URI.
func StartDatabase(t testing.TB, bin, dir string) (*procs.Process, string) {
	t.Helper()
	p, uri, err := procs.StartDatabase(context.Background(), bin, dir, filepath.Join(dir, "db"))
	require.NoError(t, err)
	t.Cleanup(p.Stop)
	return p, uri
}

// WaitReady waits, up to limit, until the service p at base is ready, and
// fails the test with the tail of its log when it exits first or is not
// ready in time.
func WaitReady(t testing.TB, p *procs.Process, base string, limit time.Duration) {
	t.Helper()
	if err := p.WaitReady(context.Background(), base, limit); err != nil {
		t.Fatalf("%v; log:\n%s", err, p.Tail(30))
	}
}
