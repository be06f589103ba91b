// Package config loads the service's configuration from the environment,
// with a .env file in the working directory filling in what the real
// environment does not set.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"

	"github.com/orgservice/orgservice/internal/org"
)

// MinSecretBytes is the shortest SECRET_KEY accepted.
const MinSecretBytes = 32

// Config is every setting of the service. .env.example documents each.
type Config struct {
	MongoURL             string        `envconfig:"MONGO_URL"`
	MongoDBName          string        `envconfig:"MONGO_DB_NAME" default:"master_metadata"`
	EmbeddedMongoAddr    string        `envconfig:"EMBEDDED_MONGO_ADDR" default:"127.0.0.1:0"`
	DataDir              string        `envconfig:"DATA_DIR" default:"./data"`
	SecretKey            string        `envconfig:"SECRET_KEY"`
	HTTPAddr             string        `envconfig:"HTTP_ADDR" default:":8080"`
	HTTPWriteTimeout     time.Duration `envconfig:"HTTP_WRITE_TIMEOUT" default:"30s"`
	JWTTTL               time.Duration `envconfig:"JWT_TTL" default:"15m"`
	RefreshTTL           time.Duration `envconfig:"REFRESH_TTL" default:"720h"`
	JWTIssuer            string        `envconfig:"JWT_ISSUER" default:"orgservice"`
	BcryptCost           int           `envconfig:"BCRYPT_COST" default:"12"`
	DBTimeout            time.Duration `envconfig:"DB_TIMEOUT" default:"5s"`
	LogLevel             string        `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat            string        `envconfig:"LOG_FORMAT" default:"json"`
	MigrationStrategy    string        `envconfig:"MIGRATION_STRATEGY" default:"auto"`
	CopyBatchSize        int           `envconfig:"COPY_BATCH_SIZE" default:"1000"`
	LeaseTTL             time.Duration `envconfig:"LEASE_TTL" default:"30s"`
	DirectoryStaleness   time.Duration `envconfig:"DIRECTORY_STALENESS" default:"1s"`
	LoginRatePerMin      int           `envconfig:"LOGIN_RATE_PER_MIN" default:"5"`
	LoginEmailRatePerMin int           `envconfig:"LOGIN_EMAIL_RATE_PER_MIN" default:"30"`
	WriteRatePerMin      int           `envconfig:"WRITE_RATE_PER_MIN" default:"10"`
	TrustedProxies       []string      `envconfig:"TRUSTED_PROXIES"`
	CORSOrigins          []string      `envconfig:"CORS_ALLOWED_ORIGINS" default:"*"`
	DocumentMaxBytes     int           `envconfig:"DOCUMENT_MAX_BYTES" default:"262144"`
	ImportMaxBytes       int64         `envconfig:"IMPORT_MAX_BYTES" default:"1073741824"`
	DataRatePerMin       int           `envconfig:"DATA_RATE_PER_MIN" default:"6000"`
	QuotaDocuments       int64         `envconfig:"QUOTA_DOCUMENTS" default:"1000000"`
	QuotaStorageBytes    int64         `envconfig:"QUOTA_STORAGE_BYTES" default:"1073741824"`
	QuotaMembers         int64         `envconfig:"QUOTA_MEMBERS" default:"1000"`
	// OperatorAPIKey turns the operator API on: its routes answer 404
	// while it is empty.
	OperatorAPIKey string `envconfig:"OPERATOR_API_KEY"`
	// RateLimitStore is "memory" or "database"; Load fills in the default
	// (memory on the embedded database, database with MONGO_URL).
	RateLimitStore string `envconfig:"RATE_LIMIT_STORE"`
	RateLimitFail  string `envconfig:"RATE_LIMIT_FAIL" default:"closed"`
}

// The values of RATE_LIMIT_STORE.
const (
	RateLimitMemory   = "memory"   // each instance counts on its own
	RateLimitDatabase = "database" // every instance sharing the database counts together
)

// MaxDocumentBytes is the largest DOCUMENT_MAX_BYTES accepted: a document's
// BSON can be a few times its JSON, and must stay under MongoDB's 16 MiB.
const MaxDocumentBytes = 2 << 20

// Quotas are the default quotas of every organization.
func (c Config) Quotas() org.Quotas {
	return org.Quotas{Documents: c.QuotaDocuments, StorageBytes: c.QuotaStorageBytes, Members: c.QuotaMembers}
}

// Embedded reports whether the service runs its own FerretDB.
func (c Config) Embedded() bool { return c.MongoURL == "" }

// Load reads .env (when present) and the environment, and validates the
// result. Its errors are one line naming the variable at fault.
func Load() (Config, error) {
	if err := godotenv.Load(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Config{}, fmt.Errorf(".env: %w", err)
	}
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, err
	}
	if c.RateLimitStore == "" {
		c.RateLimitStore = RateLimitMemory
		if !c.Embedded() {
			c.RateLimitStore = RateLimitDatabase
		}
	}
	return c, c.validate()
}

func (c Config) validate() error {
	switch {
	case !c.Embedded() && len(c.SecretKey) < MinSecretBytes:
		return fmt.Errorf("SECRET_KEY must be at least %d bytes when MONGO_URL is set", MinSecretBytes)
	case c.SecretKey != "" && len(c.SecretKey) < MinSecretBytes:
		return fmt.Errorf("SECRET_KEY must be at least %d bytes", MinSecretBytes)
	case c.MongoDBName == "" || strings.ContainsAny(c.MongoDBName, "/\\. \"$"):
		return errors.New("MONGO_DB_NAME must be a valid database name")
	case c.HTTPAddr == "":
		return errors.New("HTTP_ADDR must not be empty")
	case c.HTTPWriteTimeout < time.Second:
		return errors.New("HTTP_WRITE_TIMEOUT must be at least 1s")
	case c.JWTTTL <= 0:
		return errors.New("JWT_TTL must be positive")
	case c.RefreshTTL <= c.JWTTTL:
		return errors.New("REFRESH_TTL must be longer than JWT_TTL")
	case c.JWTIssuer == "":
		return errors.New("JWT_ISSUER must not be empty")
	case c.BcryptCost < 4 || c.BcryptCost > 31:
		return errors.New("BCRYPT_COST must be between 4 and 31")
	case c.DBTimeout <= 0:
		return errors.New("DB_TIMEOUT must be positive")
	case !oneOf(c.LogLevel, "debug", "info", "warn", "error"):
		return errors.New("LOG_LEVEL must be debug, info, warn or error")
	case !oneOf(c.LogFormat, "json", "text"):
		return errors.New("LOG_FORMAT must be json or text")
	case !oneOf(c.MigrationStrategy, "auto", "rename", "copy"):
		return errors.New("MIGRATION_STRATEGY must be auto, rename or copy")
	case c.CopyBatchSize < 1 || c.CopyBatchSize > 100000:
		return errors.New("COPY_BATCH_SIZE must be between 1 and 100000")
	case c.LeaseTTL < time.Second:
		return errors.New("LEASE_TTL must be at least 1s")
	case c.DirectoryStaleness < 10*time.Millisecond || c.DirectoryStaleness > time.Minute:
		return errors.New("DIRECTORY_STALENESS must be between 10ms and 1m")
	case c.LoginRatePerMin < 0:
		return errors.New("LOGIN_RATE_PER_MIN must not be negative")
	case c.LoginEmailRatePerMin < 0:
		return errors.New("LOGIN_EMAIL_RATE_PER_MIN must not be negative")
	case c.LoginEmailRatePerMin > 0 && c.LoginEmailRatePerMin <= c.LoginRatePerMin:
		// One address could then use it up and lock the owner out everywhere.
		return errors.New("LOGIN_EMAIL_RATE_PER_MIN must be greater than LOGIN_RATE_PER_MIN (or 0)")
	case c.WriteRatePerMin < 0:
		return errors.New("WRITE_RATE_PER_MIN must not be negative")
	case !oneOf(c.RateLimitStore, RateLimitMemory, RateLimitDatabase):
		return errors.New("RATE_LIMIT_STORE must be memory or database")
	case !oneOf(c.RateLimitFail, "open", "closed"):
		return errors.New("RATE_LIMIT_FAIL must be open or closed")
	case c.DocumentMaxBytes < 1024 || c.DocumentMaxBytes > MaxDocumentBytes:
		return fmt.Errorf("DOCUMENT_MAX_BYTES must be between 1024 and %d", MaxDocumentBytes)
	case c.ImportMaxBytes < int64(c.DocumentMaxBytes):
		return errors.New("IMPORT_MAX_BYTES must be at least DOCUMENT_MAX_BYTES")
	case c.DataRatePerMin < 0:
		return errors.New("DATA_RATE_PER_MIN must not be negative")
	case c.QuotaDocuments < 0 || c.QuotaDocuments > org.MaxQuotaDocuments:
		return fmt.Errorf("QUOTA_DOCUMENTS must be between 0 and %d", org.MaxQuotaDocuments)
	case c.QuotaStorageBytes < 0 || c.QuotaStorageBytes > org.MaxQuotaStorageBytes:
		return fmt.Errorf("QUOTA_STORAGE_BYTES must be between 0 and %d", int64(org.MaxQuotaStorageBytes))
	case c.QuotaMembers < 0 || c.QuotaMembers > org.MaxQuotaMembers:
		return fmt.Errorf("QUOTA_MEMBERS must be between 0 and %d", org.MaxQuotaMembers)
	case c.OperatorAPIKey != "" && len(c.OperatorAPIKey) < MinSecretBytes:
		return fmt.Errorf("OPERATOR_API_KEY must be at least %d bytes (or unset, which turns the operator API off)", MinSecretBytes)
	case c.OperatorAPIKey != "" && c.OperatorAPIKey == c.SecretKey:
		return errors.New("OPERATOR_API_KEY must differ from SECRET_KEY")
	}
	if _, err := c.TrustedPrefixes(); err != nil {
		return err
	}
	return nil
}

// RateLimitFailOpen reports whether a request passes (rather than getting a
// 503) when the rate-limit store cannot be reached.
func (c Config) RateLimitFailOpen() bool { return c.RateLimitFail == "open" }

// TrustedPrefixes parses TRUSTED_PROXIES.
func (c Config) TrustedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// EmbeddedSecret returns the signing key kept in dir/secret.key, generating
// it (mode 0600) on first use, so tokens outlive restarts in embedded mode.
func EmbeddedSecret(dir string) (string, error) {
	path := filepath.Join(dir, "secret.key")
	b, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(b))
		if len(key) < MinSecretBytes {
			return "", fmt.Errorf("%s holds a key shorter than %d bytes", path, MinSecretBytes)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	key := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}
