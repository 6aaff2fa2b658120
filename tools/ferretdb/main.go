// Command ferretdb-embedded starts FerretDB v1 (embedded through its Go API) on a loopback port.
//
// It exists because fhirshift's tests and demo need a real MongoDB-wire-compatible server that
// installs from the Go module proxy alone. The plain `go install` binary of FerretDB lacks its
// embedded version file; the embedding API does not need it.
//
// Usage:
//
//	ferretdb-embedded --listen 127.0.0.1:0 --sqlite-dir DIR [--uri-file FILE]
//	ferretdb-embedded --listen 127.0.0.1:27017 --postgresql-url postgres://127.0.0.1:5432/ferretdb
//
// With port 0 the kernel picks a free port; the URI actually listened on is printed on stdout and,
// with --uri-file, written atomically to FILE once the listener is bound, so a caller never has to
// guess a free port (and never races another test for one).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (port 0: any free port)")
	sqliteDir := flag.String("sqlite-dir", "", "data directory for the SQLite backend (the default backend)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL URL; selects the PostgreSQL backend instead of SQLite")
	uriFile := flag.String("uri-file", "", "write the MongoDB URI to this file once listening")
	// FerretDB logs every error reply at WARN; clients report those themselves.
	logLevel := flag.String("log-level", "error", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail("bad --log-level %q: %v", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Logger: logger}
	switch {
	case *pgURL != "":
		cfg.Handler = "postgresql"
		cfg.PostgreSQLURL = *pgURL
	case *sqliteDir != "":
		abs, err := filepath.Abs(*sqliteDir)
		if err != nil {
			fail("bad --sqlite-dir: %v", err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			fail("cannot create --sqlite-dir %s: %v", abs, err)
		}
		cfg.Handler = "sqlite"
		// WAL with synchronous=NORMAL: durable across a crash of this process (what the tests
		// kill), not across a power cut; a commit is then not an fsync, which keeps FerretDB's
		// one-transaction-per-update writes from being bound by the disk.
		cfg.SQLiteURL = "file:" + abs + "/?_pragma=synchronous(normal)"
	default:
		fail("give --sqlite-dir DIR (SQLite backend) or --postgresql-url URL (PostgreSQL backend)")
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		fail("cannot start FerretDB on %s: %v", *listen, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()

	uri := f.MongoDBURI()
	fmt.Println(uri)
	if *uriFile != "" {
		tmp := *uriFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(uri+"\n"), 0o644); err != nil {
			fail("cannot write --uri-file: %v", err)
		}
		if err := os.Rename(tmp, *uriFile); err != nil {
			fail("cannot write --uri-file: %v", err)
		}
	}
	<-done
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ferretdb-embedded: "+format+"\n", args...)
	os.Exit(2)
}
