// Command orgdata puts sample documents into an organization's tenant
// collection and counts them, so that a rename can be watched moving data
// without a MongoDB shell:
//
//	orgdata -mongo mongodb://127.0.0.1:27017/ seed org_acme_corp 1000
//	orgdata -mongo mongodb://127.0.0.1:27017/ count org_acme_corp
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "orgdata:", err)
		os.Exit(1)
	}
}

func run() error {
	uri := flag.String("mongo", "mongodb://127.0.0.1:27017/", "database server")
	dbName := flag.String("db", "master_metadata", "database (MONGO_DB_NAME)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: orgdata [-mongo URI] [-db NAME] seed COLLECTION N | count COLLECTION")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if len(args) < 2 || !strings.HasPrefix(args[1], org.CollectionPrefix) {
		flag.Usage()
		return fmt.Errorf("need a command and a tenant collection (%s…)", org.CollectionPrefix)
	}
	client, err := mongostore.Connect(*uri, 10*time.Second)
	if err != nil {
		return err
	}
	ctx := context.Background()
	defer func() { _ = client.Disconnect(ctx) }()
	coll := client.Database(*dbName).Collection(args[1])

	switch {
	case args[0] == "seed" && len(args) == 3:
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 {
			return fmt.Errorf("N must be a positive number")
		}
		for i := 0; i < n; i += 1000 {
			batch := make([]any, 0, 1000)
			for j := i; j < min(i+1000, n); j++ {
				batch = append(batch, bson.D{{Key: "n", Value: j}, {Key: "note", Value: fmt.Sprintf("sample document %d", j)}})
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				return err
			}
		}
		fmt.Printf("inserted %d documents into %s\n", n, args[1])
	case args[0] == "count" && len(args) == 2:
		n, err := coll.CountDocuments(ctx, bson.D{})
		if err != nil {
			return err
		}
		fmt.Printf("%s holds %d documents\n", args[1], n)
	default:
		flag.Usage()
		return fmt.Errorf("unknown command %q", args[0])
	}
	return nil
}
