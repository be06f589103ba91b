package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// raceBuild is set when the test binary is built with -race; the harness
// then builds the service with -race too, which reuses the build cache.
var raceBuild bool

// TestHarnessRuns runs the whole harness in miniature — tiny pools, D up to
// 1,000, sub-second phases, one instance and then two — so that it cannot
// rot. It checks what the harness produced, never how fast anything was.
func TestHarnessRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the service and the database as processes")
	}
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	cfg, err := parseFlags([]string{
		"-quick", "-quiet", "-src", "../..", "-json", jsonPath,
		"-clients", "4", "-orgs", "12", "-scale", "12,20", "-docs", "100,1000",
		"-renames", "2", "-duration", "300ms", "-warmup", "100ms", "-rounds", "1", "-login-cost", "4",
		"-instances", "1,2",
		"-doc-pool", "60", "-export-docs", "50,200",
	}, os.Stderr)
	require.NoError(t, err)
	cfg.race = raceBuild

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errw bytes.Buffer
	err = run(ctx, cfg, &out, &errw)
	require.NoError(t, err, "stderr:\n%s", errw.String())

	want := []string{
		"get-ceiling", "get", "create",
		"scale-12-get-ceiling", "scale-12-get", "scale-12-create",
		"scale-20-get-ceiling", "scale-20-get", "scale-20-create",
		"bcrypt-ceiling", "login",
		"rename-100/rename", "rename-100/copy", "rename-1000/rename", "rename-1000/copy",
		"doc-get-ceiling", "doc-get", "doc-list-ceiling", "doc-list", "export-ceiling", "export",
		"doc-insert-ceiling", "doc-insert", "export-rss-50", "export-rss-200",
	}
	// The get and login groups again with two service processes.
	two := []string{
		"get-ceiling@2", "get@2", "create@2",
		"scale-12-get-ceiling@2", "scale-12-get@2", "scale-12-create@2",
		"scale-20-get-ceiling@2", "scale-20-get@2", "scale-20-create@2",
		"bcrypt-ceiling@2", "login@2",
	}
	want = append(want, two...)
	assert.NotContains(t, out.String(), "rename-100/rename@2", "renames run with one instance only")
	for _, name := range want {
		assert.Regexp(t, `(?m)^\s*`+strings.ReplaceAll(name, "/", `\/`)+`\s`, out.String(), "table row %s", name)
	}

	b, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	var rep struct {
		Scenarios []map[string]any `json:"scenarios"`
		Ratios    map[string]*float64
		Checks    []map[string]any
		Machine   map[string]any
		Commit    string
	}
	require.NoError(t, json.Unmarshal(b, &rep), "%s", b)
	got := map[string]map[string]any{}
	for _, s := range rep.Scenarios {
		got[s["name"].(string)] = s
	}
	for _, name := range want {
		s, ok := got[name]
		if !assert.True(t, ok, "JSON scenario %s", name) {
			continue
		}
		for _, k := range []string{"ops_per_sec", "p50_ms", "p90_ms", "p99_ms", "errors", "cpu_us_per_op"} {
			assert.Contains(t, s, k, "%s.%s", name, k)
		}
		assert.EqualValues(t, 0, s["errors"], "%s had errors", name)
		assert.Positive(t, s["ops_per_sec"], "%s ran no operation", name)
		if !strings.Contains(name, "ceiling") {
			assert.NotNil(t, s["cpu_us_per_op"], "%s: service CPU per request", name)
			assert.NotNil(t, s["peak_rss_mb"], "%s: service peak RSS", name)
			instances := 1.0
			if strings.HasSuffix(name, "@2") {
				instances = 2
			}
			assert.EqualValues(t, instances, s["instances"], "%s: instances", name)
		}
	}
	for _, k := range []string{
		"get_vs_ceiling", "login_vs_bcrypt", "rename_large_vs_small", "get_vs_ceiling_at_12", "get_vs_ceiling_at_20",
		"get_vs_ceiling@2", "login_vs_bcrypt@2", "get_vs_ceiling_at_12@2", "get_vs_ceiling_at_20@2",
		"doc_get_vs_ceiling", "doc_insert_vs_ceiling", "export_vs_ceiling", "export_rss_growth_mb",
	} {
		if assert.Contains(t, rep.Ratios, k) {
			assert.NotNil(t, rep.Ratios[k], "ratio %s", k)
		}
	}
	// Issue 8's targets are at 1,000 and 10,000 organizations, which this
	// run does not reach: each is listed, not measured.
	checks := map[string]map[string]any{}
	for _, c := range rep.Checks {
		checks[c["key"].(string)] = c
	}
	for _, k := range []string{"scale-1000-get ops/s", "scale-10000-get p99 ms", "scale-10000-create errors",
		"scale-10000-create p50 ms", "scale-10000 peak RSS MB", "scale-1000-get@2 ops/s", "scale-10000@2 peak RSS MB"} {
		if assert.Contains(t, checks, k) {
			assert.Nil(t, checks[k]["value"], "check %s", k)
			assert.NotEmpty(t, checks[k]["target"], "check %s", k)
		}
	}
	assert.Positive(t, rep.Machine["cpus"])
	for _, k := range []string{"goos", "goarch", "model_name", "go_version"} {
		assert.NotEmpty(t, rep.Machine[k], "machine.%s", k)
	}
	assert.NotEmpty(t, rep.Commit)
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-orgs", "50"}, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, 50, c.Orgs, "an explicit flag beats -quick")
	assert.Equal(t, quick.scale, c.Scale)
	assert.Equal(t, []int{1000, 10000, 100000}, c.docs())
	assert.Equal(t, []int{1}, c.Instances, "-quick runs one instance")
	assert.Equal(t, quick.exportDocs, c.ExportDocs)
	assert.Equal(t, quick.docPool, c.DocPool)

	c, err = parseFlags([]string{"-max-docs", "10000"}, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, []int{1000, 10000}, c.docs())

	c, err = parseFlags([]string{"-instances", "3,1,3"}, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3}, c.Instances)

	c, err = parseFlags(nil, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 3}, c.Instances, "the full run measures one instance and three")

	c, err = parseFlags([]string{"-url", "http://127.0.0.1:1"}, os.Stderr)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, c.Instances, "a running server is one instance")

	for _, bad := range [][]string{{"-only", "nope"}, {"-pid", "1"}, {"-scale", "x"}, {"-clients", "0"},
		{"-instances", "0"}, {"-url", "http://127.0.0.1:1", "-instances", "3"}, {"-doc-pool", "0"}, {"-export-docs", "x"}} {
		_, err := parseFlags(bad, &bytes.Buffer{})
		assert.Error(t, err, "%v", bad)
	}
}

func TestRoundOps(t *testing.T) {
	for in, want := range map[float64]float64{0.0050712: 0.00507, 0.049: 0.049, 0.51234: 0.512, 4.2567: 4.26, 42.71: 42.7, 925.04: 925, 0: 0} {
		assert.InDelta(t, want, roundOps(in), 1e-9, "%v", in)
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for i := range lat {
		lat[i] *= time.Millisecond
	}
	assert.InDelta(t, 5.0, percentile(lat, 0.5), 1e-9)
	assert.InDelta(t, 9.0, percentile(lat, 0.9), 1e-9)
	assert.InDelta(t, 10.0, percentile(lat, 0.99), 1e-9)
	assert.Zero(t, percentile(nil, 0.5))
}
