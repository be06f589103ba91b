package auth

import (
	"context"
	"log/slog"

	"github.com/orgservice/orgservice/internal/org"
)

// maxRecording bounds the failed logins' events being written at once
// after their answers; past it, one is written before its answer.
const maxRecording = 64

// recordFailure writes the login.failed event of member m of o (nil: an
// unknown email, nothing to record) after the failure is answered, so
// that a known email's failure answers by the same path and in the same
// time as an unknown one's. The event keeps the request's origin; a
// process killed in that moment loses it. Wait waits for them.
func (s *Service) recordFailure(ctx context.Context, o *org.Organization, m *org.Member) {
	if m == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	select {
	case s.recording <- struct{}{}:
	default: // that many failures at once: this one waits for its write
		if err := s.rec.RecordLogin(ctx, o, m, false); err != nil {
			s.log.Warn("login.failed event lost", slog.String("org_id", o.ID), slog.Any("error", err))
		}
		return
	}
	s.failed.Go(func() {
		defer func() { <-s.recording }()
		if err := s.rec.RecordLogin(ctx, o, m, false); err != nil {
			s.log.Warn("login.failed event lost", slog.String("org_id", o.ID), slog.Any("error", err))
		}
	})
}

// Wait blocks until the failed logins' events being written are, or ctx
// is done.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.failed.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
