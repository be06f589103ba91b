// Package proctest helps black-box tests that run the service's binaries as
// processes of their own (test/crash, test/cluster).
package proctest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Build compiles the main package pkg (relative to the module root, which
// is root as seen from the test's directory) into dir and returns its path.
func Build(t *testing.T, root, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "build %s", pkg)
	return out
}

// FreeAddr returns a loopback address with a port nobody listens on now.
func FreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}
