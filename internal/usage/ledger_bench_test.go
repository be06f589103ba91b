package usage_test

import (
	"context"
	"testing"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
	"github.com/orgservice/orgservice/internal/usage"
)

// BenchmarkReserve is one reservation of one document in an organization's
// count on the embedded database: serial, one insert each; parallel, the
// writers of one process to one organization sharing inserts (group
// commit). inserts/op says how many inserts a reservation cost.
func BenchmarkReserve(b *testing.B) {
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			stores := mongostore.Open(dbtest.New(b), 0)
			l := usage.New(stores.Usage, stores.Writers, usage.Config{}, nil)
			ctx := context.Background()
			if err := l.Init(ctx, orgID); err != nil {
				b.Fatal(err)
			}
			q := org.Quotas{Documents: org.MaxQuotaDocuments, StorageBytes: org.MaxQuotaStorageBytes}
			one := []org.Usage{{Documents: 1, StorageBytes: 200}}
			reserve := func() {
				if _, err := l.Reserve(ctx, orgID, q, one, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			if mode == "serial" {
				for b.Loop() {
					reserve()
				}
			} else {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						reserve()
					}
				})
			}
			head, err := stores.Usage.Head(ctx, orgID)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(head.N-1)/float64(head.Used.Documents), "inserts/op")
		})
	}
}
