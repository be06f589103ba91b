// Command orgdata reads and writes the service's database directly, for an
// operator: it puts sample documents into a tenant collection and counts
// them, so that a rename can be watched moving data without a MongoDB
// shell, and it prints an organization's audit events, also those of an
// organization that has been deleted:
//
//	orgdata -mongo mongodb://127.0.0.1:27017/ seed org_acme_corp 1000
//	orgdata -mongo mongodb://127.0.0.1:27017/ count org_acme_corp
//	orgdata -mongo mongodb://127.0.0.1:27017/ audit 6b11a8146508f29f73056ca2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

const usage = `usage: orgdata [-mongo URI] [-db NAME] COMMAND ARGS
  seed COLLECTION N   insert N sample documents into a tenant collection (org_…)
  count COLLECTION    count a tenant collection's documents
  audit ORG_ID        print an organization's audit events, oldest first, one JSON object a line
`

func main() {
	err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "orgdata:", err)
		os.Exit(1)
	}
}

// command is a checked command line: what runs against the database.
type command func(ctx context.Context, db *mongo.Database, stdout, stderr io.Writer) error

func run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("orgdata", flag.ContinueOnError)
	fs.SetOutput(stderr)
	uri := fs.String("mongo", "mongodb://127.0.0.1:27017/", "database server (MONGO_URL, or the mongo_url the embedded database logs)")
	dbName := fs.String("db", "master_metadata", "database (MONGO_DB_NAME)")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(argv); err != nil {
		return err
	}
	cmd, err := parse(fs.Args())
	if err != nil {
		fs.Usage()
		return err
	}
	client, err := mongostore.Connect(*uri, 10*time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(ctx) }()
	return cmd(ctx, client.Database(*dbName), stdout, stderr)
}

// parse checks a command and its arguments, before anything connects.
func parse(args []string) (command, error) {
	if len(args) == 0 {
		return nil, errors.New("need a command")
	}
	name, args := args[0], args[1:]
	switch {
	case name == "seed" && len(args) == 2:
		if err := checkTenant(args[0]); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return nil, errors.New("N must be a positive number")
		}
		return func(ctx context.Context, db *mongo.Database, stdout, _ io.Writer) error {
			return seed(ctx, db.Collection(args[0]), n, stdout)
		}, nil
	case name == "count" && len(args) == 1:
		if err := checkTenant(args[0]); err != nil {
			return nil, err
		}
		return func(ctx context.Context, db *mongo.Database, stdout, _ io.Writer) error {
			return count(ctx, db.Collection(args[0]), stdout)
		}, nil
	case name == "audit" && len(args) == 1:
		if _, err := bson.ObjectIDFromHex(args[0]); err != nil {
			return nil, fmt.Errorf("%q is not an organization id (24 hex digits, as in org_id)", args[0])
		}
		return func(ctx context.Context, db *mongo.Database, stdout, stderr io.Writer) error {
			return audit(ctx, db.Collection(mongostore.AuditCollection), args[0], stdout, stderr)
		}, nil
	case name == "seed" || name == "count" || name == "audit":
		return nil, fmt.Errorf("wrong number of arguments for %s", name)
	default:
		return nil, fmt.Errorf("unknown command %q", name)
	}
}

// checkTenant refuses to touch any collection but a tenant's.
func checkTenant(coll string) error {
	if !strings.HasPrefix(coll, org.CollectionPrefix) {
		return fmt.Errorf("%q is not a tenant collection (%s…)", coll, org.CollectionPrefix)
	}
	return nil
}

func seed(ctx context.Context, coll *mongo.Collection, n int, stdout io.Writer) error {
	for i := 0; i < n; i += 1000 {
		batch := make([]any, 0, 1000)
		for j := i; j < min(i+1000, n); j++ {
			batch = append(batch, bson.D{{Key: "n", Value: j}, {Key: "note", Value: fmt.Sprintf("sample document %d", j)}})
		}
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(stdout, "inserted %d documents into %s\n", n, coll.Name())
	return err
}

func count(ctx context.Context, coll *mongo.Collection, stdout io.Writer) error {
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s holds %d documents\n", coll.Name(), n)
	return err
}

// audit prints orgID's events as stored, in relaxed Extended JSON, oldest
// first. An event's _id is "<org id>/<event id>" and event ids sort by time,
// so the organization's events are the _id range between "<org id>/" and
// "<org id>0" ("0" follows "/"). Nothing checks that the organization
// exists: a deleted one's events are kept, and this is how they are read.
func audit(ctx context.Context, coll *mongo.Collection, orgID string, stdout, stderr io.Writer) error {
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: orgID + "/"}, {Key: "$lt", Value: orgID + "0"}}}}
	cur, err := coll.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	defer func() { _ = cur.Close(ctx) }()
	n := 0
	for cur.Next(ctx) {
		line, err := bson.MarshalExtJSON(cur.Current, false, false)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return err
		}
		n++
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(stderr, "orgdata: no audit events of organization %s\n", orgID)
	}
	return nil
}
