package app

import (
	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/config"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

// FromSettings turns the environment's settings into the service's Config.
// c.SecretKey must be set (main generates one in embedded mode).
func FromSettings(c config.Config) (Config, error) {
	trusted, err := c.TrustedPrefixes()
	if err != nil {
		return Config{}, err
	}
	quotas := c.Quotas()
	return Config{
		Quotas: &quotas,
		Org: org.Config{
			Strategy: org.Strategy(c.MigrationStrategy),
			LeaseTTL: c.LeaseTTL,
		},
		Directory: directory.Config{Staleness: c.DirectoryStaleness, Lingering: c.LeaseTTL},
		Documents: document.Config{MaxBytes: c.DocumentMaxBytes},
		Auth: auth.Config{
			Secret: []byte(c.SecretKey), Issuer: c.JWTIssuer, TTL: c.JWTTTL, RefreshTTL: c.RefreshTTL, BcryptCost: c.BcryptCost,
			Lag: c.DirectoryStaleness,
		},
		HTTP: httpapi.Options{
			DBTimeout:            c.DBTimeout,
			LoginRatePerMin:      c.LoginRatePerMin,
			LoginEmailRatePerMin: c.LoginEmailRatePerMin,
			WriteRatePerMin:      c.WriteRatePerMin,
			RateFailOpen:         c.RateLimitFailOpen(),
			TrustedProxies:       trusted,
			CORSOrigins:          c.CORSOrigins,
			DataRatePerMin:       c.DataRatePerMin,
			ImportMaxBytes:       c.ImportMaxBytes,
			OperatorAPIKey:       c.OperatorAPIKey,
		},
		CopyBatchSize:    c.CopyBatchSize,
		SharedRateLimits: c.RateLimitStore == config.RateLimitDatabase,
	}, nil
}
