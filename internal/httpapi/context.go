package httpapi

import (
	"context"

	"github.com/orgservice/orgservice/internal/org"
)

type ctxKey int

const (
	principalKey ctxKey = iota
	logInfoKey
)

// RequestID returns the request's id, or "".
func RequestID(ctx context.Context) string { return org.OriginOf(ctx).RequestID }

// principal returns the authenticated member; ok is false on public routes.
func principal(ctx context.Context) (org.Principal, bool) {
	p, ok := ctx.Value(principalKey).(org.Principal)
	return p, ok
}

// logInfo collects what handlers learn that the access log line reports.
type logInfo struct{ orgID string }

func info(ctx context.Context) *logInfo {
	li, _ := ctx.Value(logInfoKey).(*logInfo)
	if li == nil {
		return &logInfo{}
	}
	return li
}
