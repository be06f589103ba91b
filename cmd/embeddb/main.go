// Command embeddb runs the embedded FerretDB as a process of its own, for
// tests and benchmarks that must kill or measure the service apart from its
// database. It prints the mongodb:// URI on stdout once it accepts
// connections and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/orgservice/orgservice/internal/embeddb"
)

func main() {
	dir := flag.String("dir", "./data/ferretdb", "directory of the SQLite files")
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: a free one)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := embeddb.Start(*dir, *addr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "embeddb:", err)
		os.Exit(1)
	}
	fmt.Println(db.URI())
	<-ctx.Done()
	db.Close()
}
