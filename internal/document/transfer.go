package document

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// AppendJSON appends the API's JSON of d — {"id","data","version",
// "created_at","updated_at"} — which is also one line of an export.
func (d *Document) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, d.ID)
	b = append(b, `,"data":`...)
	b = d.Data.AppendJSON(b)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, d.Version, 10)
	b = append(b, `,"created_at":"`...)
	b = d.CreatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","updated_at":"`...)
	b = d.UpdatedAt.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// MarshalJSON encodes d as AppendJSON does.
func (d *Document) MarshalJSON() ([]byte, error) { return d.AppendJSON(nil), nil }

// Export calls fn with every document of the principal's organization, in
// no particular order, streaming from the database. Reads go on during a
// rename: an organization whose collection turns out empty is read again
// where a rename may have moved it; a rename that moves the collection in
// the middle of an export fails it. Errors: errs.Unauthorized,
// errs.Unavailable, and fn's.
func (s *Service) Export(ctx context.Context, p org.Principal, fn func(*Document) error) error {
	return s.read(ctx, p, func(coll string) (bool, error) {
		n := 0
		err := s.store.Each(ctx, coll, func(d *Document) error {
			n++
			return fn(d)
		})
		return n > 0, err
	})
}

// ImportResult says what an import did.
type ImportResult struct {
	Inserted        int         `json:"inserted"`
	SkippedExisting int         `json:"skipped_existing"`
	Rejected        []Rejection `json:"rejected"`
}

// Rejection is a line an import could not take.
type Rejection struct {
	Line    int    `json:"line"`
	Message string `json:"message"`
}

// MaxRejections is how many rejected lines an import reports.
const MaxRejections = 100

// envelopeSlack is what a line may hold beyond its data: id, version and times.
const envelopeSlack = 1024

// Import reads NDJSON from r, one document a line as Export writes them —
// {"id","data","version","created_at","updated_at"}, of which only data
// is required (id: a fresh ObjectID; version: 1; times: now) — and inserts
// them into the principal's organization in unordered batches. A document
// whose id exists is skipped and counted; a line that is not a valid
// document is rejected (the first MaxRejections are reported) and the rest
// go on; so is a line past the organization's documents or storage quota. Blank lines are ignored. An export imported into an empty
// organization reproduces it: ids, data, versions and times. Batches
// already inserted stay when a later one fails; importing again skips them.
// Errors: errs.Busy (rename or delete in progress), errs.Unauthorized,
// errs.Unavailable, and r's read errors, wrapped.
func (s *Service) Import(ctx context.Context, p org.Principal, r io.Reader) (ImportResult, error) {
	res := ImportResult{Rejected: []Rejection{}}
	reject := func(line int, msg string) {
		if len(res.Rejected) < MaxRejections {
			res.Rejected = append(res.Rejected, Rejection{Line: line, Message: msg})
		}
	}
	batch := make([]*Document, 0, s.cfg.ImportBatch)
	lineNos := make([]int, 0, s.cfg.ImportBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.write(ctx, p, func(ctx context.Context, coll string) error {
			return s.insertWithin(ctx, p.OrgID, coll, batch, lineNos, &res, reject)
		})
		batch, lineNos = batch[:0], lineNos[:0]
		return err
	}
	lines := newLineReader(r, s.cfg.MaxBytes+envelopeSlack)
	for n := 1; ; n++ {
		line, tooLong, err := lines.next()
		if errors.Is(err, io.EOF) && line == nil && !tooLong {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return res, fmt.Errorf("read the import: %w", err)
		}
		switch {
		case tooLong:
			reject(n, fmt.Sprintf("the line exceeds %d bytes", s.cfg.MaxBytes+envelopeSlack))
		case len(bytes.TrimSpace(line)) == 0:
		default:
			d, msg := s.parseLine(line)
			if msg != "" {
				reject(n, msg)
				break
			}
			batch, lineNos = append(batch, d), append(lineNos, n)
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return res, err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return res, flush()
}

// parseLine reads one import line, or says why it cannot.
func (s *Service) parseLine(line []byte) (*Document, string) {
	if !json.Valid(line) {
		return nil, "not valid JSON"
	}
	env, err := parseValid(line, 0)
	if err != nil {
		return nil, problemText(err)
	}
	t := now()
	d := &Document{Version: 1, CreatedAt: t, UpdatedAt: t}
	var hasData bool
	for _, m := range env {
		switch m.Key {
		case "id":
			id, ok := m.Value.(string)
			if !ok || !ValidID(id) {
				return nil, "id " + idRule
			}
			d.ID = id
		case "data":
			obj, ok := m.Value.(Object)
			if !ok {
				return nil, "data must be a JSON object"
			}
			d.Data, hasData = obj, true
		case "version":
			v, ok := m.Value.(int64)
			if !ok || v < 1 {
				return nil, "version must be an integer of at least 1"
			}
			d.Version = v
		case "created_at", "updated_at":
			str, _ := m.Value.(string)
			tm, err := time.Parse(time.RFC3339Nano, str)
			if err != nil {
				return nil, m.Key + " must be an RFC 3339 time"
			}
			tm = tm.UTC().Truncate(time.Millisecond)
			if m.Key == "created_at" {
				d.CreatedAt = tm
			} else {
				d.UpdatedAt = tm
			}
		default:
			return nil, fmt.Sprintf("unknown field %q", m.Key)
		}
	}
	if !hasData {
		return nil, "data is required"
	}
	if d.ID == "" {
		d.ID = s.store.NewID()
	}
	if err := s.checkSize(d.Data); err != nil {
		return nil, problemText(err)
	}
	return d, ""
}

// problemText is a domain error as one line of text.
func problemText(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		msg := e.Message
		for _, f := range e.Fields {
			msg += "; " + f.Field + ": " + f.Message
		}
		return msg
	}
	var se *SyntaxError
	if errors.As(err, &se) {
		return "not a JSON object"
	}
	return "invalid"
}

// lineReader reads lines of at most max bytes, skipping over longer ones.
type lineReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its newline (nil at the end), or
// tooLong for a line over the limit, which is read through and dropped.
// err is io.EOF with the last line when it has no newline.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+1 { // +1: the newline
				tooLong = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			if len(l.buf) == 0 && !tooLong {
				return nil, false, err
			}
			return bytes.TrimRight(l.buf, "\r\n"), tooLong, err
		}
		return bytes.TrimRight(l.buf, "\r\n"), tooLong, nil
	}
}
