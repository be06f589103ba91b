// Command orgbench is the load harness of the organization service. It
// measures every endpoint beside the ceiling that bounds it, in one run on
// one machine: get beside the same lookups straight through the driver,
// login beside raw bcrypt, create, rename of a collection of D documents
// with each strategy, get and create as the number of organizations
// grows, and the documents API beside the driver operations that bound it. Beside throughput and latency it reports the service process's CPU
// time per request and peak memory, which tell two implementations apart
// when the database is the bottleneck.
//
// By default it builds cmd/orgservice and cmd/embeddb, runs the embedded
// FerretDB as a process of its own and the service binary on it. -mongo uses
// a running database instead; -url targets any running server with the same
// API (with -mongo for the ceilings and the seeding it needs, and -pid for
// its CPU and memory). -instances runs the get and login groups again with
// several service processes on the one database, the load spread over them
// as a load balancer would. See docs/benchmarks.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err == nil {
		err = run(ctx, cfg, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orgbench:", err)
		os.Exit(1)
	}
}

// config is the harness's settings, from its flags.
type config struct {
	URL             string
	PID             int
	Mongo           string
	DBName          string
	LookupField     string
	Src             string
	ServiceBin      string
	EmbeddbBin      string
	ServiceLogLevel string
	ServiceEnv      []string
	JSON            string
	Only            []string
	Quick           bool
	Quiet           bool
	SeedAPI         bool
	Keep            bool

	Clients    int
	Instances  []int // service processes per scenario group, a pass of the groups for each
	Orgs       int
	DocPool    int
	ExportDocs []int
	Scale      []int
	Docs       []int
	MaxDocs    int
	Renames    int
	Rounds     int
	LoginCost  int
	Duration   time.Duration
	Warmup     time.Duration

	race bool // build the binaries with -race (set by tests run with -race, to reuse their build cache)
}

// groups are the scenario groups, in the order they run.
var groups = []string{"get", "login", "rename", "docs"}

// docs returns the D values to measure: -docs up to -max-docs.
func (c config) docs() []int {
	var out []int
	for _, d := range c.Docs {
		if d > 0 && (c.MaxDocs <= 0 || d <= c.MaxDocs) {
			out = append(out, d)
		}
	}
	return out
}

func (c config) want(group string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, group) }

// preset is the size of a run: the full one, or -quick.
type preset struct {
	instances         []int
	orgs, docPool     int
	exportDocs        []int
	scale, docs       []int
	maxDocs, renames  int
	duration, warmup  time.Duration
	rounds, loginCost int
}

var (
	full  = preset{orgs: 1000, instances: []int{1, 3}, docPool: 10000, exportDocs: []int{1000, 100000}, scale: []int{1000, 10000}, docs: []int{1000, 10000, 100000, 1000000}, maxDocs: 1000000, renames: 5, duration: 10 * time.Second, warmup: 2 * time.Second, rounds: 3, loginCost: 12}
	quick = preset{orgs: 300, instances: []int{1}, docPool: 2000, exportDocs: []int{1000, 20000}, scale: []int{300, 1000}, docs: []int{1000, 10000, 100000}, maxDocs: 100000, renames: 3, duration: 3 * time.Second, warmup: time.Second, rounds: 2, loginCost: 10}
)

func parseFlags(args []string, errw io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("orgbench", flag.ContinueOnError)
	fs.SetOutput(errw)
	fs.StringVar(&c.URL, "url", "", "target this running server (base URL) instead of starting the service")
	fs.IntVar(&c.PID, "pid", 0, "with -url: the server's process id on this machine, for its CPU time and memory")
	fs.StringVar(&c.Mongo, "mongo", "", "database (mongodb:// URI) for the ceilings and seeding; without -url the service runs on it too")
	fs.StringVar(&c.DBName, "db", "master_metadata", "with -url: the database the server keeps its organizations in")
	fs.StringVar(&c.LookupField, "lookup-field", "slug", "field of the organizations collection the get-ceiling looks up")
	fs.StringVar(&c.Src, "src", ".", "module root to build cmd/orgservice and cmd/embeddb from")
	fs.StringVar(&c.ServiceBin, "service-bin", "", "service binary to run (default: build ./cmd/orgservice)")
	fs.StringVar(&c.EmbeddbBin, "embeddb-bin", "", "database binary to run (default: build ./cmd/embeddb)")
	fs.StringVar(&c.ServiceLogLevel, "service-log-level", "info", "LOG_LEVEL of the services the harness starts (info: one access line per request, as in production)")
	fs.Func("service-env", "KEY=VALUE added to the environment of the services the harness starts (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return errors.New("want KEY=VALUE")
		}
		c.ServiceEnv = append(c.ServiceEnv, v)
		return nil
	})
	fs.StringVar(&c.JSON, "json", "", "also write the results as JSON to this file")
	only := fs.String("only", "", "comma-separated scenario groups to run: "+strings.Join(groups, ","))
	fs.BoolVar(&c.Quick, "quick", false, "a short run (smaller pools, D up to 100,000): under 2 minutes on 2 cores")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress bars")
	fs.BoolVar(&c.SeedAPI, "seed-api", false, "seed the get and scale pools through the API only (default: one through the API, the rest cloned from its documents)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory (database files, service logs)")
	fs.IntVar(&c.Clients, "clients", 32, "concurrent clients")
	instances := fs.String("instances", ints(full.instances), "service processes on the one database, the load spread over them: a pass of the get and login groups for each N (rows of N > 1 named <row>@N)")
	fs.IntVar(&c.Orgs, "orgs", full.orgs, "organizations in the get pool")
	fs.IntVar(&c.DocPool, "doc-pool", full.docPool, "documents in the collection of the doc-* and export scenarios")
	exportDocs := fs.String("export-docs", ints(full.exportDocs), "document counts D of the export-rss-D scenarios (memory of the largest vs the smallest)")
	scale := fs.String("scale", ints(full.scale), "organization counts T of the scale-T scenarios")
	docs := fs.String("docs", ints(full.docs), "document counts D of the rename-D scenarios")
	fs.IntVar(&c.MaxDocs, "max-docs", full.maxDocs, "largest D to run")
	fs.IntVar(&c.Renames, "renames", full.renames, "renames per D and strategy (fewer when -duration runs out)")
	fs.IntVar(&c.Rounds, "rounds", full.rounds, "rounds in which a scenario and its ceiling take turns, the duration split between them")
	fs.IntVar(&c.LoginCost, "login-cost", full.loginCost, "BCRYPT_COST of the login scenario's service (full run: the service's default)")
	fs.DurationVar(&c.Duration, "duration", full.duration, "measured phase of each scenario")
	fs.DurationVar(&c.Warmup, "warmup", full.warmup, "unmeasured warm-up before each scenario")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Quick {
		apply := func(name string, fn func()) {
			if !set[name] {
				fn()
			}
		}
		apply("instances", func() { *instances = ints(quick.instances) })
		apply("orgs", func() { c.Orgs = quick.orgs })
		apply("doc-pool", func() { c.DocPool = quick.docPool })
		apply("export-docs", func() { *exportDocs = ints(quick.exportDocs) })
		apply("scale", func() { *scale = ints(quick.scale) })
		apply("docs", func() { *docs = ints(quick.docs) })
		apply("max-docs", func() { c.MaxDocs = quick.maxDocs })
		apply("renames", func() { c.Renames = quick.renames })
		apply("duration", func() { c.Duration = quick.duration })
		apply("warmup", func() { c.Warmup = quick.warmup })
		apply("rounds", func() { c.Rounds = quick.rounds })
		apply("login-cost", func() { c.LoginCost = quick.loginCost })
	}
	var err error
	if c.Scale, err = parseInts(*scale); err != nil {
		return c, fmt.Errorf("-scale: %w", err)
	}
	if c.Docs, err = parseInts(*docs); err != nil {
		return c, fmt.Errorf("-docs: %w", err)
	}
	if c.URL != "" && !set["instances"] { // one running server
		*instances = "1"
	}
	if c.Instances, err = parseInts(*instances); err != nil {
		return c, fmt.Errorf("-instances: %w", err)
	}
	if c.ExportDocs, err = parseInts(*exportDocs); err != nil {
		return c, fmt.Errorf("-export-docs: %w", err)
	}
	slices.Sort(c.ExportDocs)
	slices.Sort(c.Scale)
	slices.Sort(c.Docs)
	slices.Sort(c.Instances)
	c.Instances = slices.Compact(c.Instances)
	if *only != "" {
		c.Only = strings.Split(*only, ",")
		for _, g := range c.Only {
			if !slices.Contains(groups, g) {
				return c, fmt.Errorf("-only: unknown group %q (want %s)", g, strings.Join(groups, ","))
			}
		}
	}
	switch {
	case c.Clients < 1:
		return c, errors.New("-clients must be at least 1")
	case c.Orgs < 1:
		return c, errors.New("-orgs must be at least 1")
	case c.DocPool < 1:
		return c, errors.New("-doc-pool must be at least 1")
	case c.Renames < 1:
		return c, errors.New("-renames must be at least 1")
	case c.LoginCost < 4 || c.LoginCost > 31:
		return c, errors.New("-login-cost must be between 4 and 31")
	case c.Duration <= 0:
		return c, errors.New("-duration must be positive")
	case c.want("rename") && len(c.docs()) == 0:
		return c, errors.New("-docs has no value up to -max-docs")
	case c.PID != 0 && c.URL == "":
		return c, errors.New("-pid needs -url")
	case len(c.Instances) == 0:
		return c, errors.New("-instances needs at least one N")
	case c.URL != "" && !slices.Equal(c.Instances, []int{1}):
		return c, errors.New("-instances other than 1 needs the harness to start the services (no -url)")
	}
	return c, nil
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(strings.ReplaceAll(f, "_", ""))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// run executes the scenarios the configuration asks for and reports them.
func run(ctx context.Context, cfg config, out, errw io.Writer) error {
	h := newHarness(cfg, out, errw)
	defer h.tearDown()
	began := time.Now()
	if err := h.setUp(ctx); err != nil {
		return err
	}
	h.printHeader()
	scenarios := map[string]func(context.Context) error{
		"get": h.getScenarios, "login": h.loginScenarios, "rename": h.renameScenarios, "docs": h.docScenarios,
	}
	for _, n := range cfg.Instances {
		h.setInstances(n)
		for _, g := range groups {
			if !cfg.want(g) {
				continue
			}
			if g == "rename" && n > 1 {
				// One rename at a time by one client: more instances change
				// nothing but which process answers.
				h.rep.notes = append(h.rep.notes, fmt.Sprintf("rename-D@%d: not measured (one rename at a time; measured with one instance)", n))
				continue
			}
			if g == "docs" && n > 1 {
				// Their ratios compare one service with its driver ceiling.
				h.rep.notes = append(h.rep.notes, fmt.Sprintf("docs@%d: not measured (the documents' ratios are one service's; measured with one instance)", n))
				continue
			}
			t0 := time.Now()
			if err := scenarios[g](ctx); err != nil {
				return fmt.Errorf("%s%s: %w", g, h.suffix, err)
			}
			h.notef("%s%s scenarios took %s", g, h.suffix, time.Since(t0).Round(time.Second))
		}
	}
	h.checkTargets()
	h.printSummary()
	fmt.Fprintf(out, "\nran in %s\n", time.Since(began).Round(time.Second))
	if cfg.JSON == "" {
		return nil
	}
	f, err := os.Create(cfg.JSON)
	if err != nil {
		return err
	}
	if err := h.writeJSON(ctx, f, began); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
