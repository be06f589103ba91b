package mongostore

import (
	"errors"
	"testing"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/stretchr/testify/assert"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// A database too busy to take a write is unavailable (503, retry), never an
// internal error (500); what FerretDB answers then is an InternalError.
func TestMapErrBusyIsUnavailable(t *testing.T) {
	locked := mongo.CommandError{Code: 1, Name: "InternalError",
		Message: "[collection.go:135 sqlite.(*collection).InsertAll.func1] database is locked (5) (SQLITE_BUSY)"}
	for name, tt := range map[string]struct {
		err  error
		want errs.Kind
	}{
		"sqlite busy":          {locked, errs.Unavailable},
		"sqlite busy, wrapped": {errors.Join(errors.New("context"), locked), errs.Unavailable},
		"other internal error": {mongo.CommandError{Code: 1, Name: "InternalError", Message: "something else"}, errs.Internal},
		"duplicate key":        {mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}, errs.Conflict},
	} {
		t.Run(name, func(t *testing.T) {
			assert.Equal(t, tt.want, errs.KindOf(mapErr(tt.err, "op")))
		})
	}
}
