//go:build crash

package crash

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/apiclient"
)

var (
	importRounds = flag.Int("import-rounds", 4, "rounds that kill an import")
	importLines  = flag.Int("import-lines", 20_000, "documents per killed import")
)

// operatorKey is the service's OPERATOR_API_KEY.
const operatorKey = "crash-operator-key-0123456789abcdef"

// writerTTL is the documents service's writer registration TTL (its
// default): a killed writer's registration expires that long after its
// last renewal, and the reconciler then recounts its organization.
const writerTTL = 10 * time.Second

// TestImportKilled kills the service at a random moment of an import that
// runs into the organization's documents quota, restarts it, and checks
// the usage against what the collection holds: never below it, never past
// the quota, and equal to it right away or once the reconciler has
// recounted the organization — within a writer TTL, a LEASE_TTL and the
// recount's read of the collection. The last import, not killed, is then
// answered in full and the usage is right at once.
func TestImportKilled(t *testing.T) {
	rng := newRand(t)
	r := newRig(t)
	r.do(apiclient.CreateOrg("Importer", "importer@crash.test", password), http.StatusCreated)
	login := r.do(apiclient.Login("importer@crash.test", password), http.StatusOK)
	token := str(login["access_token"])
	org := r.do(apiclient.GetOrg("Importer"), http.StatusOK)
	quota := int64(2 * *importLines) // reached in the later rounds or by the last import
	r.do(apiclient.OperatorPatch(operatorKey, str(org["id"]), apiclient.OperatorChange{Quotas: map[string]*int64{"documents": &quota}}), http.StatusOK)

	body := func(round, lines int) []byte {
		var b bytes.Buffer
		for i := range lines {
			fmt.Fprintf(&b, `{"id":"r%d-%06d","data":{"round":%d,"i":%d,"pad":"%s"}}`+"\n", round, i, round, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
		}
		return b.Bytes()
	}
	for round := range *importRounds {
		answered := make(chan int, 1)
		go func() {
			status, _ := r.call(apiclient.Import(token, body(round, *importLines)))
			answered <- status
		}()
		time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
		r.svc.Kill()
		status := <-answered
		r.restart(0)
		killed := time.Now()

		truth := r.measure(token)
		assert.LessOrEqual(t, truth.Documents.Used, quota, "round %d: never past the quota", round)
		first := r.usage(token)
		t.Logf("round %d (import answered %d): %d documents, %d bytes held; usage right after the restart %d, %d",
			round, status, truth.Documents.Used, truth.StorageBytes.Used, first.Documents.Used, first.StorageBytes.Used)
		bound := writerTTL + 3*leaseTTL + 30*time.Second
		for {
			u := r.usage(token)
			require.GreaterOrEqual(t, u.Documents.Used, truth.Documents.Used, "round %d: a count is never below the truth", round)
			require.GreaterOrEqual(t, u.StorageBytes.Used, truth.StorageBytes.Used, "round %d", round)
			if u.Documents.Used == truth.Documents.Used && u.StorageBytes.Used == truth.StorageBytes.Used {
				t.Logf("round %d: usage right %s after the restart", round, time.Since(killed).Round(100*time.Millisecond))
				break
			}
			require.Less(t, time.Since(killed), bound, "round %d: usage %+v still not %+v", round, u, truth)
			time.Sleep(500 * time.Millisecond)
		}
	}

	// An import of as many new documents as the quota, run to its end,
	// fills the quota exactly: its answer and the usage agree at
	// once. The last kill's recount may still be under way (the writer
	// it left expires first), refusing writes with 409; and the service
	// answers that before it reads the body, so the client may see the
	// connection cut instead: both are retried, as importing again is.
	var res map[string]any
	for deadline := time.Now().Add(writerTTL + 3*leaseTTL + 60*time.Second); ; {
		status, m := r.call(apiclient.Import(token, body(*importRounds, int(quota))))
		if status == http.StatusOK {
			res = m
			break
		}
		require.True(t, time.Now().Before(deadline), "the last import: %d %v", status, m)
		time.Sleep(500 * time.Millisecond)
	}
	truth := r.measure(token)
	u := r.usage(token)
	assert.Equal(t, truth.Documents.Used, u.Documents.Used)
	assert.Equal(t, truth.StorageBytes.Used, u.StorageBytes.Used)
	assert.Equal(t, quota, truth.Documents.Used, "the last import fills the quota exactly")
	rejected, _ := res["rejected"].([]any)
	assert.NotEmpty(t, rejected, "lines past the quota are rejected: %v", res["inserted"])
}

// usage reads the organization's usage.
func (r *rig) usage(token string) apiclient.Usage {
	r.t.Helper()
	var u apiclient.Usage
	a, err := r.api.Do(context.Background(), apiclient.ReadUsage(token))
	require.NoError(r.t, err)
	if a.Status == http.StatusConflict { // the first count of an organization is under way
		time.Sleep(200 * time.Millisecond)
		return r.usage(token)
	}
	require.Equal(r.t, http.StatusOK, a.Status, "%s", a)
	require.NoError(r.t, a.JSON(&u))
	return u
}

// measure is what the organization holds, as the service counts it: its
// documents, and the bytes of each one's JSON as the export writes it.
func (r *rig) measure(token string) apiclient.Usage {
	r.t.Helper()
	a, err := r.api.Do(context.Background(), apiclient.Export(token))
	require.NoError(r.t, err)
	require.Equal(r.t, http.StatusOK, a.Status)
	var u apiclient.Usage
	for _, line := range bytes.Split(a.Body, []byte("\n")) {
		if len(line) > 0 {
			u.Documents.Used++
			u.StorageBytes.Used += int64(len(line))
		}
	}
	n, err := r.db.Collection("org_importer").CountDocuments(context.Background(), bson.D{})
	require.NoError(r.t, err)
	require.Equal(r.t, n, u.Documents.Used, "the export holds every document")
	return u
}
