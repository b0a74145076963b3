// Command devserver serves every Airlock function in one process for local runs, each
// under /<EntryPoint>/ with the sub-paths it has when deployed at "/". scripts/dev.sh
// prepares the database and keys and then runs it.
package main

import (
	"context"

	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"airlock.dev/airlock/functions/access"
	"airlock.dev/airlock/functions/approval"
	"airlock.dev/airlock/functions/query"
	"airlock.dev/airlock/functions/sweep"
	"airlock.dev/airlock/shared/app"
	"airlock.dev/airlock/shared/audit"
	"airlock.dev/airlock/shared/cloudsqlemu"
	"airlock.dev/airlock/shared/db"
	"airlock.dev/airlock/shared/migrate"
)

// A function is one entry point and how to build its handler.
type function struct {
	entry, group string
	handler      func(*app.Deps) http.Handler
}

var functions = []function{
	{query.EntryPoint, migrate.GroupQuery, func(d *app.Deps) http.Handler { return query.New(d) }},
	{access.EntryPoint, migrate.GroupRequests, func(d *app.Deps) http.Handler { return access.New(d) }},
	{approval.EntryPoint, migrate.GroupApprovals, func(d *app.Deps) http.Handler { return approval.New(d) }},
	{sweep.EntryPoint, migrate.GroupSweeper, func(d *app.Deps) http.Handler { return sweep.NewLocal(d) }},
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	state := flag.String("state", ".dev", "state directory of scripts/dev.sh: the local signing key")
	policyPath := flag.String("policy", "shared/demo/policy.yaml", "policy file")
	emulation := flag.String("cloudsql", "", "the Cloud SQL emulation (scripts/cmd/cloudsqlemu) whose function logins to use; default STATE/cloudsql.json")
	database := flag.String("database", "airlock", "database the functions connect to")
	flag.Parse()
	if *emulation == "" {
		*emulation = filepath.Join(*state, "cloudsql.json")
	}
	if err := run(*addr, *state, *policyPath, *emulation, *database); err != nil {
		log.Fatalf("devserver: %v", err)
	}
}

func run(addr, state, policyPath, emulation, database string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	emu, err := cloudsqlemu.Load(emulation)
	if err != nil {
		return fmt.Errorf("%w (run scripts/dev.sh)", err)
	}
	// Every function reads the process environment through app.LoadConfig, as deployed,
	// with what the flags say on top: the policy, its own login, local tokens.
	getenv := func(group string) func(string) string {
		set := map[string]string{
			"AIRLOCK_POLICY": "", "AIRLOCK_POLICY_FILE": policyPath,
			"DATABASE_URL": db.WithDatabase(emu.Logins[group], database), "CLOUDSQL_INSTANCE": "",
			"AUTH_MODE": "local", "AUTH_LOCAL_KEY_FILE": filepath.Join(state, "auth-key.pub.pem"),
		}
		return func(k string) string {
			if v, ok := set[k]; ok {
				return v
			}
			return os.Getenv(k)
		}
	}
	var recorder *audit.Recorder
	mux := http.NewServeMux()
	var all []*app.Deps
	for _, f := range functions {
		if _, ok := emu.Logins[f.group]; !ok {
			return fmt.Errorf("%s names no login for %s", emulation, f.group)
		}
		cfg, err := app.LoadConfig(getenv(f.group))
		if err != nil {
			return err
		}
		cfg.Function, cfg.Group = f.entry, f.group
		if recorder == nil {
			// One process is one instance, so its functions share one Recorder and write
			// one chain: the file's lines are then in time order, which is how the
			// verifier tells two swapped lines apart (seq orders a chain, time orders the
			// file). Each entry names its function; the recorder's own checkpoints name
			// none.
			if recorder, err = audit.FromConfig(ctx, cfg.Audit); err != nil {
				return err
			}
			defer recorder.Close(context.Background())
		}
		cfg.Recorder = recorder
		deps, err := app.Build(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", f.entry, err)
		}
		all = append(all, deps)
		mux.Handle("/"+f.entry+"/", http.StripPrefix("/"+f.entry, f.handler(deps)))
	}
	defer func() {
		for _, d := range all {
			d.Close()
		}
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	fmt.Printf("airlock: ready on http://%s (", ln.Addr())
	for i, f := range functions {
		if i > 0 {
			fmt.Print(", ")
		}
		fmt.Printf("/%s/", f.entry)
	}
	fmt.Println(")")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
