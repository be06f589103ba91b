package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

// inDir runs the test in an empty directory, so no .env is picked up by accident.
func inDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

func TestLoadDefaults(t *testing.T) {
	inDir(t)
	c, err := Load()
	require.NoError(t, err)
	assert.True(t, c.Embedded())
	assert.Equal(t, "master_metadata", c.MongoDBName)
	assert.Equal(t, ":8080", c.HTTPAddr)
	assert.Equal(t, 12, c.BcryptCost)
	assert.Equal(t, "auto", c.MigrationStrategy)
	assert.Equal(t, []string{"*"}, c.CORSOrigins)
	assert.Equal(t, 256<<10, c.DocumentMaxBytes)
	assert.Equal(t, int64(1<<30), c.ImportMaxBytes)
	assert.Equal(t, 6000, c.DataRatePerMin)
	assert.Equal(t, org.DefaultQuotas(), c.Quotas())
	assert.Empty(t, c.OperatorAPIKey, "the operator API is off unless a key is set")
	assert.Equal(t, 15*time.Minute, c.JWTTTL, "access tokens are short: sessions renew them")
	assert.Equal(t, 30*24*time.Hour, c.RefreshTTL)
	assert.Equal(t, 5, c.LoginRatePerMin)
	assert.Equal(t, 30, c.LoginEmailRatePerMin)
}

func TestLoadRejectsBadValuesNamingTheVariable(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{"BCRYPT_COST", "3"},
		{"BCRYPT_COST", "twelve"},
		{"JWT_TTL", "-1h"},
		{"JWT_TTL", "soon"},
		{"DB_TIMEOUT", "0s"},
		{"LOG_LEVEL", "loud"},
		{"LOG_FORMAT", "xml"},
		{"MIGRATION_STRATEGY", "teleport"},
		{"TRUSTED_PROXIES", "10.0.0.0/8,nonsense"},
		{"LOGIN_RATE_PER_MIN", "-1"},
		{"LOGIN_EMAIL_RATE_PER_MIN", "-1"},
		{"LOGIN_EMAIL_RATE_PER_MIN", "5"}, // not above LOGIN_RATE_PER_MIN: one address could use it up
		{"REFRESH_TTL", "10m"},            // not longer than JWT_TTL
		{"REFRESH_TTL", "forever"},
		{"SECRET_KEY", "short"},
		{"MONGO_DB_NAME", "a.b"},
		{"RATE_LIMIT_STORE", "redis"},
		{"RATE_LIMIT_FAIL", "maybe"},
		{"DOCUMENT_MAX_BYTES", "100"},
		{"DOCUMENT_MAX_BYTES", "99999999"},
		{"IMPORT_MAX_BYTES", "1000"},
		{"DATA_RATE_PER_MIN", "-1"},
		{"QUOTA_DOCUMENTS", "-1"},
		{"QUOTA_DOCUMENTS", "1000000001"},
		{"QUOTA_STORAGE_BYTES", "-5"},
		{"QUOTA_STORAGE_BYTES", "1125899906842625"},
		{"QUOTA_MEMBERS", "10001"},
		{"QUOTA_MEMBERS", "many"},
		{"OPERATOR_API_KEY", "too-short"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			inDir(t)
			t.Setenv(tc.key, tc.value)
			_, err := Load()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key)
			assert.NotContains(t, err.Error(), "\n", "one line")
		})
	}
}

func TestRateLimitStoreDefaultsFollowTheDatabase(t *testing.T) {
	inDir(t)
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, RateLimitMemory, c.RateLimitStore, "embedded: one process, counted in memory")
	assert.Equal(t, "closed", c.RateLimitFail)
	assert.False(t, c.RateLimitFailOpen())

	t.Setenv("MONGO_URL", "mongodb://localhost:27017")
	t.Setenv("SECRET_KEY", strings.Repeat("k", MinSecretBytes))
	c, err = Load()
	require.NoError(t, err)
	assert.Equal(t, RateLimitDatabase, c.RateLimitStore, "a shared database: counted in it")

	// An explicit value wins either way.
	t.Setenv("RATE_LIMIT_STORE", RateLimitMemory)
	t.Setenv("RATE_LIMIT_FAIL", "open")
	c, err = Load()
	require.NoError(t, err)
	assert.Equal(t, RateLimitMemory, c.RateLimitStore)
	assert.True(t, c.RateLimitFailOpen())
	t.Setenv("MONGO_URL", "")
	t.Setenv("RATE_LIMIT_STORE", RateLimitDatabase)
	c, err = Load()
	require.NoError(t, err)
	assert.Equal(t, RateLimitDatabase, c.RateLimitStore)
}

func TestSecretRequiredWithMongoURL(t *testing.T) {
	inDir(t)
	t.Setenv("MONGO_URL", "mongodb://localhost:27017")
	_, err := Load()
	require.ErrorContains(t, err, "SECRET_KEY")
	t.Setenv("SECRET_KEY", strings.Repeat("k", MinSecretBytes))
	_, err = Load()
	require.NoError(t, err)
}

func TestDotEnvFillsInAndEnvironmentWins(t *testing.T) {
	dir := inDir(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte("HTTP_ADDR=:9999\nMONGO_DB_NAME=fromfile\n"), 0o600))
	t.Setenv("MONGO_DB_NAME", "fromenv")
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, ":9999", c.HTTPAddr)
	assert.Equal(t, "fromenv", c.MongoDBName)
	os.Unsetenv("HTTP_ADDR") // godotenv set it in the process environment
}

func TestEmbeddedSecretIsGeneratedOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	k1, err := EmbeddedSecret(dir)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(k1), MinSecretBytes)
	st, err := os.Stat(filepath.Join(dir, "secret.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	k2, err := EmbeddedSecret(dir)
	require.NoError(t, err)
	assert.Equal(t, k1, k2, "kept across restarts")
}

func TestOperatorKeyMustDifferFromTheSecret(t *testing.T) {
	inDir(t)
	key := strings.Repeat("k", 40)
	t.Setenv("SECRET_KEY", key)
	t.Setenv("OPERATOR_API_KEY", key)
	_, err := Load()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "OPERATOR_API_KEY")
	t.Setenv("OPERATOR_API_KEY", strings.Repeat("o", 32))
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("o", 32), c.OperatorAPIKey)
}
