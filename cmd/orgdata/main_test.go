package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// orgdata runs the command line argv against db's database and returns
// what it printed.
func orgdata(t *testing.T, dbName string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	argv = append([]string{"-mongo", dbtest.URI(t), "-db", dbName}, argv...)
	err = run(context.Background(), argv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestArgumentsCheckedBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want string
	}{
		{"no command", nil, "need a command"},
		{"unknown command", []string{"drop", "org_acme"}, `unknown command "drop"`},
		{"seed without N", []string{"seed", "org_acme"}, "wrong number of arguments for seed"},
		{"seed outside tenants", []string{"seed", "organizations", "5"}, `"organizations" is not a tenant collection`},
		{"seed N not positive", []string{"seed", "org_acme", "0"}, "N must be a positive number"},
		{"count too many", []string{"count", "org_acme", "org_b"}, "wrong number of arguments for count"},
		{"count outside tenants", []string{"count", "audit"}, `"audit" is not a tenant collection`},
		{"audit without id", []string{"audit"}, "wrong number of arguments for audit"},
		{"audit by collection", []string{"audit", "org_acme_corp"}, `"org_acme_corp" is not an organization id`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			// Nothing listens on port 1: a command that connected would fail otherwise.
			argv := append([]string{"-mongo", "mongodb://127.0.0.1:1/"}, tc.argv...)
			err := run(context.Background(), argv, &out, &errOut)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, errOut.String(), "usage: orgdata")
			assert.Empty(t, out.String())
		})
	}
}

func TestSeedAndCount(t *testing.T) {
	db := dbtest.New(t)
	out, _, err := orgdata(t, db.Name(), "seed", "org_acme", "1500")
	require.NoError(t, err)
	assert.Equal(t, "inserted 1500 documents into org_acme\n", out)
	n, err := db.Collection("org_acme").CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 1500, n)

	out, _, err = orgdata(t, db.Name(), "count", "org_acme")
	require.NoError(t, err)
	assert.Equal(t, "org_acme holds 1500 documents\n", out)
}

func TestAuditPrintsOneOrganizationOldestFirst(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	acme, other := bson.NewObjectID().Hex(), bson.NewObjectID().Hex()
	at := time.Date(2026, 12, 3, 17, 34, 13, 0, time.UTC)
	event := func(orgID string, second int, action org.EventAction) org.Event {
		t := at.Add(time.Duration(second) * time.Second)
		return org.Event{
			ID: fmt.Sprintf("%019d-%08x", t.UnixNano(), second), OrgID: orgID, Time: t,
			Actor:  org.Actor{MemberID: orgID, Email: "admin@acme.com"},
			Action: action, Target: org.Target{Type: org.TargetOrganization, ID: orgID, Name: "Acme Corp"},
			Details: map[string]string{"slug": "acme_corp"}, RequestID: fmt.Sprintf("req-%d", second),
		}
	}
	// Inserted out of order, with another organization's events on either side.
	store := mongostore.Open(db, 0).Audit
	require.NoError(t, store.Insert(ctx, []org.Event{
		event(other, 0, org.EventOrgCreated),
		event(acme, 3, org.EventOrgDeleted),
		event(acme, 1, org.EventOrgCreated),
		event(acme, 2, org.EventLoginSucceeded),
		event(other, 4, org.EventOrgDeleted),
	}))

	out, errOut, err := orgdata(t, db.Name(), "audit", acme)
	require.NoError(t, err)
	assert.Empty(t, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3, out)
	for i, want := range []org.Event{event(acme, 1, org.EventOrgCreated), event(acme, 2, org.EventLoginSucceeded), event(acme, 3, org.EventOrgDeleted)} {
		var got struct {
			ID        string            `bson:"_id"`
			OrgID     string            `bson:"org_id"`
			Time      time.Time         `bson:"time"`
			Action    string            `bson:"action"`
			Details   map[string]string `bson:"details"`
			RequestID string            `bson:"request_id"`
		}
		require.NoError(t, bson.UnmarshalExtJSON([]byte(lines[i]), false, &got), lines[i])
		assert.Equal(t, acme+"/"+want.ID, got.ID)
		assert.Equal(t, acme, got.OrgID)
		assert.True(t, want.Time.Equal(got.Time), "time %v, want %v", got.Time, want.Time)
		assert.Equal(t, string(want.Action), got.Action)
		assert.Equal(t, want.Details, got.Details)
		assert.Equal(t, want.RequestID, got.RequestID)
	}
	// The collection is as it was: reading changes nothing.
	n, err := db.Collection(mongostore.AuditCollection).CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)

	out, errOut, err = orgdata(t, db.Name(), "audit", bson.NewObjectID().Hex())
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "no audit events of organization")
}
