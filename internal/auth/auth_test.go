package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

const (
	secret = "auth-test-secret-0123456789abcdef0123456789"
	issuer = "orgservice"
)

// directory is an in-memory auth.Orgs. These are unit tests of token
// and credential logic, which only needs "find the organization by id or
// email"; the HTTP tests in internal/httpapi cover the same paths against a
// real database. Sessions are kept in a real database (see newFixture).
type directory struct {
	mu   sync.Mutex
	orgs map[string]*org.Organization
	// db holds what the database has written that the directory has not
	// followed yet; Reread takes it in and counts.
	db      map[string]*org.Organization
	rereads int
}

func (d *directory) Reread(ctx context.Context, id string) (*org.Organization, error) {
	d.mu.Lock()
	d.rereads++
	if o, ok := d.db[id]; ok {
		d.orgs[id] = o
	}
	d.mu.Unlock()
	return d.ByID(ctx, id)
}

func (d *directory) put(o *org.Organization) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *o
	d.orgs[o.ID] = &c
}

func (d *directory) remove(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.orgs, id)
}

// find returns a copy of the first organization match accepts.
func (d *directory) find(match func(*org.Organization) bool) (*org.Organization, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.orgs {
		if match(o) {
			c := *o
			return &c, nil
		}
	}
	return nil, errs.Errorf(errs.NotFound, "organization not found")
}

func (d *directory) ByID(_ context.Context, id string) (*org.Organization, error) {
	return d.find(func(o *org.Organization) bool { return o.ID == id })
}

func (d *directory) Get(_ context.Context, name string) (*org.Organization, error) {
	return d.find(func(o *org.Organization) bool { return o.Slug == org.Slug(name) })
}

func (d *directory) ByEmail(_ context.Context, email string) (*org.Organization, error) {
	return d.find(func(o *org.Organization) bool { return o.AdminEmail == org.NormalizeEmail(email) })
}

const password = "correct horse battery"

type fixture struct {
	dir      *directory
	rec      *recorder
	svc      *auth.Service
	org      *org.Organization
	db       *mongo.Database
	stores   *mongostore.Stores
	ended    *endedSet
	sessions auth.Sessions
}

// recorder keeps the logins and session ends it is told of; err, when set,
// is what it fails with; hold, when set, is waited on by a failed login's.
type recorder struct {
	mu     sync.Mutex
	logins []string // "<member id> ok" or "<member id> failed"
	ends   []string // "<session id> <reason>"
	err    error
	hold   chan struct{}
}

func (r *recorder) RecordLogin(_ context.Context, _ *org.Organization, m *org.Member, ok bool) error {
	r.mu.Lock()
	hold := r.hold
	r.mu.Unlock()
	if hold != nil && !ok {
		<-hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.logins = append(r.logins, m.ID+map[bool]string{true: " ok", false: " failed"}[ok])
	return nil
}

func (r *recorder) RecordLoginFailure(_ context.Context, _ *org.Organization, m *org.Member, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.logins = append(r.logins, m.ID+" failed: "+reason)
	return nil
}

func (r *recorder) RecordSessionEnd(_ context.Context, _ *org.Organization, _ *org.Member, id, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ends = append(r.ends, id+" "+reason)
	return nil
}

// endedSet is this instance's memory of ended sessions, as the directory
// keeps it (the directory's own tests cover how ends reach it from others).
type endedSet struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (e *endedSet) SessionEnded(id string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	u, ok := e.until[id]
	return ok && time.Now().Before(u), nil
}

func (e *endedSet) EndSession(s org.SessionEnd) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.until[s.SessionID] = s.Until
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.logins
	r.logins = nil
	return l
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	hash, err := auth.Bcrypt{Cost: 4}.Hash(password)
	require.NoError(t, err)
	o := &org.Organization{
		ID: "65f000000000000000000001", Name: "Acme Corp", Slug: "acme_corp", CollectionName: "org_acme_corp",
		AdminEmail: "admin@acme.com", PasswordHash: hash, TokenVersion: 3, State: org.StateActive,
	}
	dir := &directory{orgs: map[string]*org.Organization{}}
	dir.put(o)
	db := dbtest.New(t)
	f := &fixture{dir: dir, rec: &recorder{}, org: o, db: db, stores: mongostore.Open(db, 0),
		ended: &endedSet{until: map[string]time.Time{}}}
	f.sessions = auth.Sessions{Store: f.stores.Sessions, Uses: f.stores.RefreshUses, Ends: f.stores.SessionEnds,
		Log: f.stores.Changes, Ended: f.ended}
	f.svc = f.service(t, dir, auth.Config{})
	return f
}

// service is an auth.Service over orgs and f's sessions and recorder, with
// cfg's TTL, RefreshTTL and Lag (the fixture's secret, issuer and cost).
func (f *fixture) service(t *testing.T, orgs auth.Orgs, cfg auth.Config) *auth.Service {
	t.Helper()
	cfg.Secret, cfg.Issuer, cfg.BcryptCost = []byte(secret), issuer, 4
	if cfg.TTL == 0 {
		cfg.TTL = time.Hour
	}
	svc, err := auth.NewService(auth.Deps{Orgs: orgs, Recorder: f.rec, Sessions: f.sessions}, cfg)
	require.NoError(t, err)
	return svc
}

// claims returns the claims a token of f's organization carries.
func (f *fixture) claims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub": f.org.AdminEmail, "org_name": f.org.Name, "org_id": f.org.ID, "ver": f.org.TokenVersion, "sid": testSID,
		"iss": issuer, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// testSID is the session of hand-made tokens: no session of that id
// exists, and a token is checked without reading sessions.
const testSID = "0123456789abcdef0123456789abcdef"

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(t, err)
	return s
}

// tamper rewrites a signed token's payload and keeps the old signature.
func tamper(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	edit(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	tok, err := f.svc.Login(context.Background(), "ADMIN@acme.com", password)
	require.NoError(t, err)
	valid := tok.AccessToken
	const endedSID = "fedcba9876543210fedcba9876543210"
	f.ended.EndSession(org.SessionEnd{SessionID: endedSID, Until: time.Now().Add(time.Hour)})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := f.claims()
		edit(c)
		return c
	}
	noneToken := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.claims())
	header := func(alg string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + alg + `","typ":"JWT"}`))
	}
	validParts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"issued by Login", valid, true},
		{"hand-made with the right key and claims", sign(t, jwt.SigningMethodHS256, []byte(secret), f.claims()), true},

		{"alg none", noneToken, false},
		{"alg none, upper case", header("NONE") + "." + strings.Split(noneToken, ".")[1] + ".", false},
		{"alg none header over a valid token's payload and signature", header("none") + "." + validParts[1] + "." + validParts[2], false},
		{"HS512 with the right key", sign(t, jwt.SigningMethodHS512, []byte(secret), f.claims()), false},
		{"HS384 with the right key", sign(t, jwt.SigningMethodHS384, []byte(secret), f.claims()), false},
		{"RS256 with some RSA key", sign(t, jwt.SigningMethodRS256, rsaKey, f.claims()), false},
		{"RS256 header over an HS256 signature", header("RS256") + "." + validParts[1] + "." + validParts[2], false},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte(secret+"x"), f.claims()), false},
		{"empty key", sign(t, jwt.SigningMethodHS256, []byte{}, f.claims()), false},
		{"expired", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Minute).Unix()
		})), false},
		{"missing exp", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "exp") })), false},
		{"exp not a number", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" })), false},
		{"issued in the future", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) {
			c["iat"] = time.Now().Add(time.Hour).Unix()
			c["exp"] = time.Now().Add(2 * time.Hour).Unix()
		})), false},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["iss"] = "someone-else" })), false},
		{"missing issuer", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "iss") })), false},
		{"missing org_id", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "org_id") })), false},
		{"unknown org_id", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["org_id"] = "65f0000000000000000000ff" })), false},
		{"older version", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["ver"] = f.org.TokenVersion - 1 })), false},
		{"newer version", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["ver"] = f.org.TokenVersion + 1 })), false},
		{"missing version", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "ver") })), false},
		{"missing session (issued before sessions)", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "sid") })), false},
		{"ended session", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["sid"] = endedSID })), false},
		{"tampered: sid", tamper(t, valid, func(m map[string]any) { m["sid"] = testSID }), false},
		{"other subject", sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["sub"] = "mallory@evil.com" })), false},

		{"tampered: org_id", tamper(t, valid, func(m map[string]any) { m["org_id"] = "65f0000000000000000000ff" }), false},
		{"tampered: exp extended", tamper(t, valid, func(m map[string]any) { m["exp"] = time.Now().Add(100 * 24 * time.Hour).Unix() }), false},
		{"tampered: sub", tamper(t, valid, func(m map[string]any) { m["sub"] = "mallory@evil.com" }), false},
		{"tampered: nothing changed but re-encoded", tamper(t, valid, func(map[string]any) {}), false},
		{"signature stripped", validParts[0] + "." + validParts[1] + ".", false},
		{"signature of another token", validParts[0] + "." + validParts[1] + "." +
			strings.Split(sign(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["org_name"] = "x" })), ".")[2], false},

		{"garbage", "not-a-token", false},
		{"garbage with dots", "a.b.c", false},
		{"empty", "", false},
		{"bearer prefix inside", "Bearer " + valid, false},
		{"trailing data", valid + "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.svc.Authenticate(context.Background(), tt.token)
			if tt.ok {
				require.NoError(t, err)
				assert.Len(t, p.SessionID, 32, "the token's session")
				p.SessionID = ""
				assert.Equal(t, org.Principal{OrgID: f.org.ID, Email: f.org.AdminEmail, OrgName: f.org.Name, MemberID: f.org.ID, Role: org.RoleOwner}, p)
				return
			}
			require.Error(t, err)
			assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
			assert.Zero(t, p)
		})
	}
}

// A token lives only as long as its organization's version and existence.
func TestAuthenticateRevocation(t *testing.T) {
	ctx := context.Background()

	t.Run("version bumped", func(t *testing.T) {
		f := newFixture(t)
		tok, err := f.svc.Login(ctx, f.org.AdminEmail, password)
		require.NoError(t, err)
		_, err = f.svc.Authenticate(ctx, tok.AccessToken)
		require.NoError(t, err)

		f.org.TokenVersion++
		f.dir.put(f.org)
		_, err = f.svc.Authenticate(ctx, tok.AccessToken)
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)

		tok2, err := f.svc.Login(ctx, f.org.AdminEmail, password)
		require.NoError(t, err)
		_, err = f.svc.Authenticate(ctx, tok2.AccessToken)
		assert.NoError(t, err, "a token issued after the bump works")
	})

	t.Run("organization deleted", func(t *testing.T) {
		f := newFixture(t)
		tok, err := f.svc.Login(ctx, f.org.AdminEmail, password)
		require.NoError(t, err)
		f.dir.remove(f.org.ID)
		_, err = f.svc.Authenticate(ctx, tok.AccessToken)
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	})

	// renamedAway logs in, then renames the fixture's organization to Globex.
	renamedAway := func(t *testing.T) (*fixture, auth.Token) {
		f := newFixture(t)
		tok, err := f.svc.Login(ctx, f.org.AdminEmail, password)
		require.NoError(t, err)
		renamed := *f.org
		renamed.Name, renamed.Slug = "Globex", "globex"
		f.dir.put(&renamed)
		return f, tok
	}

	t.Run("name taken over by another organization", func(t *testing.T) {
		f, tok := renamedAway(t)
		f.dir.put(&org.Organization{ID: "65f000000000000000000002", Name: f.org.Name, Slug: f.org.Slug,
			AdminEmail: "other@acme.com", TokenVersion: f.org.TokenVersion, State: org.StateActive})
		_, err := f.svc.Authenticate(ctx, tok.AccessToken)
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "its org_name now names another organization: %v", err)
	})

	t.Run("renamed, old name free", func(t *testing.T) {
		f, tok := renamedAway(t)
		p, err := f.svc.Authenticate(ctx, tok.AccessToken)
		require.NoError(t, err, "renaming does not revoke")
		assert.Equal(t, f.org.ID, p.OrgID, "the token stays bound to its organization by id")
		assert.Equal(t, "Globex", p.OrgName)
	})

	t.Run("directory failure is not a 401", func(t *testing.T) {
		f := newFixture(t)
		tok, err := f.svc.Login(ctx, f.org.AdminEmail, password)
		require.NoError(t, err)
		svc := f.service(t, failing{}, auth.Config{})
		_, err = svc.Authenticate(ctx, tok.AccessToken)
		assert.Equal(t, errs.Unavailable, errs.KindOf(err), "%v", err)
	})
}

type failing struct{}

func (failing) ByID(context.Context, string) (*org.Organization, error) {
	return nil, errs.Errorf(errs.Unavailable, "down")
}

func (failing) Reread(context.Context, string) (*org.Organization, error) {
	return nil, errs.Errorf(errs.Unavailable, "down")
}

func (failing) Get(context.Context, string) (*org.Organization, error) {
	return nil, errs.Errorf(errs.Unavailable, "down")
}

func (failing) ByEmail(context.Context, string) (*org.Organization, error) {
	return nil, errs.Errorf(errs.Unavailable, "down")
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)

	t.Run("ok", func(t *testing.T) {
		tok, err := f.svc.Login(ctx, "  Admin@ACME.com ", password)
		require.NoError(t, err)
		assert.Equal(t, "Bearer", tok.TokenType)
		assert.Equal(t, int64(3600), tok.ExpiresIn)

		var c jwt.MapClaims
		_, err = jwt.ParseWithClaims(tok.AccessToken, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
			jwt.WithValidMethods([]string{"HS256"}))
		require.NoError(t, err)
		assert.Equal(t, f.org.AdminEmail, c["sub"])
		assert.Equal(t, f.org.ID, c["org_id"])
		assert.Equal(t, f.org.Name, c["org_name"])
		assert.Equal(t, issuer, c["iss"])
		assert.EqualValues(t, f.org.TokenVersion, c["ver"])
		exp, err := c.GetExpirationTime()
		require.NoError(t, err)
		iat, err := c.GetIssuedAt()
		require.NoError(t, err)
		assert.Equal(t, time.Hour, exp.Sub(iat.Time))
	})

	for _, tt := range []struct {
		name, email, password string
		kind                  errs.Kind
	}{
		{"wrong password", f.org.AdminEmail, "wrong password", errs.Unauthorized},
		{"unknown email", "nobody@acme.com", password, errs.Unauthorized},
		{"password plus one byte", f.org.AdminEmail, password + "x", errs.Unauthorized},
		{"password prefix", f.org.AdminEmail, password[:len(password)-1], errs.Unauthorized},
		{"blank email", " ", password, errs.Invalid},
		{"blank password", f.org.AdminEmail, "  ", errs.Invalid},
		{"both empty", "", "", errs.Invalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.svc.Login(ctx, tt.email, tt.password)
			require.Error(t, err)
			assert.Equal(t, tt.kind, errs.KindOf(err), "%v", err)
			assert.Zero(t, tok)
		})
	}

	t.Run("wrong password and unknown email fail alike", func(t *testing.T) {
		_, e1 := f.svc.Login(ctx, f.org.AdminEmail, "wrong password")
		_, e2 := f.svc.Login(ctx, "nobody@acme.com", "wrong password")
		assert.Equal(t, e1.Error(), e2.Error())
	})
}

// A token the directory refuses is checked once more against the
// organization read afresh when it is younger than Lag (and a second): it
// may come from another instance that wrote what this one has not
// followed yet. An older one is refused from memory, without a read.
func TestYoungTokenIsReadAfresh(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.service(t, f.dir, auth.Config{Lag: time.Second})
	// Another instance changed the password (version 4) and issued a token
	// at the new version; this directory still holds version 3.
	newer := *f.org
	newer.TokenVersion = 4
	f.dir.db = map[string]*org.Organization{f.org.ID: &newer}
	c := f.claims()
	c["ver"] = 4
	young := sign(t, jwt.SigningMethodHS256, []byte(secret), c)
	c["iat"] = time.Now().Add(-3 * time.Second).Unix()
	old := sign(t, jwt.SigningMethodHS256, []byte(secret), c)

	_, err := svc.Authenticate(ctx, old)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	assert.Zero(t, f.dir.rereads, "a token older than the bound is refused from memory")

	p, err := svc.Authenticate(ctx, young)
	require.NoError(t, err)
	assert.Equal(t, f.org.ID, p.OrgID)
	assert.Equal(t, 1, f.dir.rereads)

	_, err = f.svc.Authenticate(ctx, young) // known now; no Lag, no read either way
	require.NoError(t, err)
	assert.Equal(t, 1, f.dir.rereads)

	// Revoked for good: the fresh read refuses it as well.
	newer.TokenVersion = 5
	f.dir.db[f.org.ID] = &newer
	f.dir.put(&newer)
	_, err = svc.Authenticate(ctx, young)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	assert.Equal(t, 2, f.dir.rereads)
}

// A member's succeeded login is recorded before it is answered, a failed
// one just after; an unknown email records nothing; no token is issued
// unrecorded.
func TestLoginRecorded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	_, err := f.svc.Login(ctx, f.org.AdminEmail, password)
	require.NoError(t, err)
	_, err = f.svc.Login(ctx, f.org.AdminEmail, "wrong password")
	require.Error(t, err)
	require.NoError(t, f.svc.Wait(ctx))
	_, err = f.svc.Login(ctx, f.org.AdminEmail, password+strings.Repeat("x", 80))
	require.Error(t, err)
	_, err = f.svc.Login(ctx, "nobody@acme.com", password)
	require.Error(t, err)
	require.NoError(t, f.svc.Wait(ctx))
	assert.Equal(t, []string{f.org.ID + " ok", f.org.ID + " failed", f.org.ID + " failed"}, f.rec.take())

	f.rec.err = errs.Errorf(errs.Unavailable, "down")
	tok, err := f.svc.Login(ctx, f.org.AdminEmail, password)
	assert.Equal(t, errs.Unavailable, errs.KindOf(err), "%v", err)
	assert.Zero(t, tok, "no token without its event")
	_, err = f.svc.Login(ctx, f.org.AdminEmail, "wrong password")
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "a failure answers as an unknown email's, its event lost: %v", err)
}

// A wrong password for a known email answers by the same path as an
// unknown email: before its event is written, which happens after. The
// recorder here holds every failed login's event until released: the
// answer must not wait for it.
func TestFailedLoginAnswersBeforeItsEvent(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.rec.hold = make(chan struct{})
	answered := make(chan error, 1)
	go func() {
		_, err := f.svc.Login(ctx, f.org.AdminEmail, "wrong password")
		answered <- err
	}()
	select {
	case err := <-answered:
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("a failed login waited for its event")
	}
	_, err := f.svc.Login(ctx, "nobody@acme.com", "wrong password")
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	assert.Empty(t, f.rec.take(), "not written yet")
	close(f.rec.hold)
	require.NoError(t, f.svc.Wait(ctx))
	assert.Equal(t, []string{f.org.ID + " failed"}, f.rec.take(), "written after the answer")
}

// bcrypt reads only 72 bytes: a 73-byte password must not log in as its prefix.
func TestLoginPasswordLength(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p72 := strings.Repeat("p", 71) + "!"
	require.Len(t, p72, 72)
	hash, err := auth.Bcrypt{Cost: 4}.Hash(p72)
	require.NoError(t, err)
	f.org.PasswordHash = hash
	f.dir.put(f.org)

	_, err = f.svc.Login(ctx, f.org.AdminEmail, p72)
	require.NoError(t, err)
	_, err = f.svc.Login(ctx, f.org.AdminEmail, p72+"x")
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	_, err = f.svc.Login(ctx, f.org.AdminEmail, p72+strings.Repeat("y", 100))
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)

	_, err = auth.Bcrypt{Cost: 4}.Hash(p72 + "x")
	assert.Error(t, err, "hashing more than 72 bytes is refused, not truncated")
}
