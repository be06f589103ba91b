package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/orgservice/orgservice/internal/document"
)

// DefaultImportMaxBytes caps an import's body unless Options say otherwise.
const DefaultImportMaxBytes = 1 << 30

// transferWindow is how long an export may take to write, or an import to
// read, its next bytes: the server's own timeouts are for short requests,
// and a transfer of millions of documents is not one.
const transferWindow = 30 * time.Second

// flushEvery is how many exported documents are written between flushes.
const flushEvery = 1000

// countingWriter counts what reached the client's connection.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) exportDocuments(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(transferWindow)) // not every writer has deadlines (tests)
	w.Header().Set("Content-Type", "application/x-ndjson")
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var line []byte
	n := 0
	err := s.docs.Export(r.Context(), p, func(d *document.Document) error {
		line = append(d.AppendJSON(line[:0]), '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
		if n++; n%flushEvery == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
			_ = rc.Flush()
			_ = rc.SetWriteDeadline(time.Now().Add(transferWindow))
		}
		return nil
	})
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err == nil:
		if cw.n == 0 {
			w.WriteHeader(http.StatusOK)
		}
	case cw.n == 0:
		s.fail(w, r, err) // nothing sent yet: a problem can still be answered
	default:
		// The answer is half sent: cut the connection, so that the client
		// sees a truncated transfer instead of a short export.
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "export failed mid-stream", slog.String("request_id", RequestID(r.Context())),
				slog.Int("documents_sent", n), slog.Any("error", err))
		}
		panic(http.ErrAbortHandler)
	}
}

// deadlineReader moves the connection's read deadline on with every read.
type deadlineReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (d deadlineReader) Read(p []byte) (int, error) {
	_ = d.rc.SetReadDeadline(time.Now().Add(transferWindow))
	return d.r.Read(p)
}

func (s *Server) importDocuments(w http.ResponseWriter, r *http.Request) {
	max := s.opts.ImportMaxBytes
	tooLarge := &requestError{http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large",
		fmt.Sprintf("the import exceeds %d bytes (IMPORT_MAX_BYTES); lines before the limit may have been imported, and importing again skips them", max)}
	if r.ContentLength > max {
		s.fail(w, r, tooLarge)
		return
	}
	rc := http.NewResponseController(w)
	body := deadlineReader{r: http.MaxBytesReader(w, r.Body, max), rc: rc}
	p, _ := principal(r.Context())
	res, err := s.docs.Import(r.Context(), p, body)
	_ = rc.SetWriteDeadline(time.Now().Add(transferWindow))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		s.fail(w, r, tooLarge)
	case err != nil:
		s.fail(w, r, err)
	default:
		respond(w, http.StatusOK, res)
	}
}
