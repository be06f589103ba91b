package procs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// WaitReady waits, up to limit, until the service at base answers 200 on
// /readyz. It fails at once when the process exits first.
func (p *Process) WaitReady(ctx context.Context, base string, limit time.Duration) error {
	// A connection per probe: none outlives a killed process.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.Name, p.err, p.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s; see %s", p.Name, limit, p.Log)
		}
	}
}

// StartDatabase runs cmd/embeddb (the binary bin) in dir, as "embeddb", on
// its files under dataDir and a port of its choosing, and returns it with
// the mongodb:// URI it prints once it accepts connections.
func StartDatabase(ctx context.Context, bin, dir, dataDir string) (*Process, string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, "", err
	}
	p, err := start("embeddb", bin, dir, []string{"-dir", dataDir, "-addr", "127.0.0.1:0"}, nil, w)
	w.Close() // the child holds its own copy
	if err != nil {
		r.Close()
		return nil, "", err
	}
	line := make(chan string, 1)
	go func() {
		defer r.Close()
		s := bufio.NewScanner(r)
		if s.Scan() {
			line <- strings.TrimSpace(s.Text())
		}
		close(line)
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case uri, ok := <-line:
		if ok && strings.HasPrefix(uri, "mongodb://") {
			return p, uri, nil
		}
		p.Stop()
		return nil, "", fmt.Errorf("embeddb printed %q, not a mongodb:// URI; see %s", uri, p.Log)
	case <-time.After(60 * time.Second):
	case <-ctx.Done():
	}
	p.Stop()
	return nil, "", fmt.Errorf("embeddb did not print its URI; see %s", p.Log)
}
