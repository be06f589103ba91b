package procs

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The two ways of reading a process's CPU time agree, to the tick.
func TestCPUTime(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	end := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(end) { // burn some CPU
	}
	pid := os.Getpid()
	stat, err := statCPU(pid)
	require.NoError(t, err)
	got, err := CPUTime(pid)
	require.NoError(t, err)
	assert.Greater(t, got, 100*time.Millisecond)
	assert.InDelta(t, float64(stat), float64(got), float64(50*time.Millisecond))
	peak, err := PeakRSS(pid)
	require.NoError(t, err)
	assert.Positive(t, peak)
}
