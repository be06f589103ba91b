package mongostore

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/document"
)

// A tenant document is stored as {_id, data, version, created_at,
// updated_at}, so that a person opening the collection in a database shell
// sees each document as the API shows it. Integers that fit are stored as
// int32, the others as int64, fractions as doubles.

func toStored(d *document.Document) bson.D {
	return bson.D{
		{Key: "_id", Value: d.ID},
		{Key: "data", Value: toBSON(d.Data)},
		{Key: "version", Value: narrow(d.Version)},
		{Key: "created_at", Value: d.CreatedAt},
		{Key: "updated_at", Value: d.UpdatedAt},
	}
}

// toBSON converts a document value. Values are never documents the client
// chose to be operators: they are stored under data, and filters compare
// them by equality only.
func toBSON(v any) any {
	switch v := v.(type) {
	case document.Object:
		out := make(bson.D, len(v))
		for i, m := range v {
			out[i] = bson.E{Key: m.Key, Value: toBSON(m.Value)}
		}
		return out
	case []any:
		out := make(bson.A, len(v))
		for i, e := range v {
			out[i] = toBSON(e)
		}
		return out
	case int64:
		return narrow(v)
	}
	return v
}

func narrow(n int64) any {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return int32(n)
	}
	return n
}

// fromStored reads a tenant document. Documents put there by other means
// than the API are shown as well as they can be: a non-string _id as its
// text, no data object as data made of the other fields.
func fromStored(raw bson.Raw) (*document.Document, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	d := &document.Document{}
	var rest document.Object
	hasData := false
	for _, e := range elems {
		v := e.Value()
		switch e.Key() {
		case "_id":
			if s, ok := v.StringValueOK(); ok {
				d.ID = s
			} else {
				d.ID = text(v)
			}
			continue
		case "data":
			if v.Type == bson.TypeEmbeddedDocument {
				obj, err := fromDocument(v.Document())
				if err != nil {
					return nil, err
				}
				d.Data, hasData = obj, true
				continue
			}
		case "version":
			if n, ok := v.AsInt64OK(); ok {
				d.Version = n
				continue
			}
		case "created_at":
			if t, ok := v.TimeOK(); ok {
				d.CreatedAt = t.UTC()
				continue
			}
		case "updated_at":
			if t, ok := v.TimeOK(); ok {
				d.UpdatedAt = t.UTC()
				continue
			}
		}
		val, err := fromBSON(v)
		if err != nil {
			return nil, err
		}
		rest = append(rest, document.Member{Key: e.Key(), Value: val})
	}
	if !hasData {
		d.Data = rest
		if d.Data == nil {
			d.Data = document.Object{}
		}
	}
	return d, nil
}

func fromDocument(raw bson.Raw) (document.Object, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	out := make(document.Object, len(elems))
	for i, e := range elems {
		v, err := fromBSON(e.Value())
		if err != nil {
			return nil, err
		}
		out[i] = document.Member{Key: e.Key(), Value: v}
	}
	return out, nil
}

// fromBSON converts a stored value to a document value; BSON types JSON
// lacks become strings.
func fromBSON(v bson.RawValue) (any, error) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return fromDocument(v.Document())
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, e := range vals {
			if out[i], err = fromBSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	case bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	}
	return text(v), nil
}

// text is a value of a type JSON lacks, as a string.
func text(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeDateTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case bson.TypeDecimal128:
		return v.Decimal128().String()
	case bson.TypeInt32, bson.TypeInt64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case bson.TypeBinary:
		_, data := v.Binary()
		return base64.StdEncoding.EncodeToString(data)
	}
	return v.String()
}
