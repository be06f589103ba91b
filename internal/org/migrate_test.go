package org_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// TestMigrateMembers writes an organization as the code before members
// did — admin_email, password_hash and token_version on the organization,
// no members — and checks that its admin becomes its owner: at once on
// read, durably after MigrateMembers, idempotently, and that its admin logs
// in before and after it with the session and token kept across it. A
// token from before sessions (no sid, nor member id in it) is refused: its
// holder logs in again.
func TestMigrateMembers(t *testing.T) {
	f := newFixture(t, 1000)
	ctx := context.Background()
	hash, err := bcrypt.GenerateFromPassword([]byte("password-1"), 4)
	require.NoError(t, err)
	oid := bson.NewObjectID()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	_, err = f.db.Collection("organizations").InsertOne(ctx, bson.D{
		{Key: "_id", Value: oid}, {Key: "organization_name", Value: "Old Co"}, {Key: "slug", Value: "old_co"},
		{Key: "collection_name", Value: "org_old_co"}, {Key: "admin_email", Value: "admin@old.co"},
		{Key: "password_hash", Value: string(hash)}, {Key: "token_version", Value: int64(4)},
		{Key: "state", Value: "active"}, {Key: "created_at", Value: at}, {Key: "updated_at", Value: at},
	})
	require.NoError(t, err)
	require.NoError(t, f.stores.Names.Claim(ctx, "slug/old_co", oid.Hex()))
	require.NoError(t, f.stores.Names.Claim(ctx, "email/admin@old.co", oid.Hex()))
	require.NoError(t, f.stores.Tenants.Create(ctx, "org_old_co"))

	oldToken, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"org_name": "Old Co", "org_id": oid.Hex(), "ver": 4, "sub": "admin@old.co", "iss": "orgservice",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(apptest.Secret))
	require.NoError(t, err)

	a := f.process(org.Config{})
	svc, authn := a.Orgs(), a.Auth()
	want := []org.Member{{ID: oid.Hex(), Email: "admin@old.co", PasswordHash: string(hash), Role: org.RoleOwner,
		TokenVersion: 4, CreatedAt: at, UpdatedAt: at}}

	_, err = authn.Authenticate(ctx, oldToken)
	assert.True(t, errs.Is(err, errs.Unauthorized), "a token from before sessions: %v", err)

	// Before the migration, reads already see the admin as owner.
	tok, err := authn.Login(ctx, "Admin@Old.co", "password-1")
	require.NoError(t, err)
	p, err := authn.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, org.Principal{OrgID: oid.Hex(), Email: "admin@old.co", OrgName: "Old Co", MemberID: oid.Hex(),
		Role: org.RoleOwner, SessionID: p.SessionID}, p)
	assert.NotEmpty(t, p.SessionID)

	for range 2 { // idempotent
		require.NoError(t, svc.MigrateMembers(ctx))
		var raw struct {
			Members []bson.M  `bson:"members"`
			Admin   string    `bson:"admin_email"`
			Updated time.Time `bson:"updated_at"`
		}
		require.NoError(t, f.db.Collection("organizations").FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&raw))
		require.Len(t, raw.Members, 1, "the admin is stored as the one member")
		assert.Equal(t, oid.Hex(), raw.Members[0]["id"])
		assert.Equal(t, "owner", raw.Members[0]["role"])
		assert.EqualValues(t, 4, raw.Members[0]["token_version"])
		assert.Equal(t, "admin@old.co", raw.Admin)
		assert.True(t, at.Equal(raw.Updated), "the migration changes no visible time")
		left, err := f.stores.Organizations.Unmigrated(ctx)
		require.NoError(t, err)
		assert.Empty(t, left)
		o, err := f.stores.Organizations.ByID(ctx, oid.Hex())
		require.NoError(t, err)
		assert.Equal(t, want, o.Members)
	}

	// An organization from before quotas is counted by the first
	// reconcile, under its lease, for a moment.
	require.Eventually(t, func() bool {
		_, err := f.stores.Usage.Head(ctx, oid.Hex())
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the reconciler counts its usage")
	require.Eventually(t, func() bool {
		o, err := f.stores.Organizations.ByID(ctx, oid.Hex())
		leased, lerr := f.db.Collection("leases").CountDocuments(ctx, bson.D{{Key: "_id", Value: oid.Hex()}})
		return err == nil && o.Pending == nil && lerr == nil && leased == 0
	}, 10*time.Second, 20*time.Millisecond)

	// The token, its refresh, a fresh login and the owner's rights all still work.
	_, err = authn.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	tok, err = authn.Refresh(ctx, tok.RefreshToken)
	require.NoError(t, err)
	_, err = authn.Login(ctx, "Admin@Old.co", "password-1")
	require.NoError(t, err)
	_, err = svc.Update(ctx, p, org.UpdateInput{Password: strp("password-2"), CurrentPassword: strp("password-1")})
	require.NoError(t, err)
	_, err = authn.Authenticate(ctx, tok.AccessToken)
	assert.True(t, errs.Is(err, errs.Unauthorized), "a password change revokes the token: %v", err)
}
