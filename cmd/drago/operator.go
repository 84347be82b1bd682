package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func operatorCommand(e *env) *ffcli.Command {
	return group(e, "operator", "Operate the server's store: snapshots", `Operate the server's store.

Example:
  drago operator snapshot save drago.snap
  drago operator snapshot restore drago.snap`,
		snapshotCommand(e))
}

func snapshotCommand(e *env) *ffcli.Command {
	c := group(e, "snapshot", "Save or restore every stored object (root token)", `A snapshot is every object the server stores, read in one transaction, in a
JSON file readable by its owner only: it holds every credential's hash. It
works on every store, and is how a single-server bbolt installation moves to
etcd and back (docs/etcd.md). Both take the root token.

Example:
  drago operator snapshot save drago.snap
  drago operator snapshot restore drago.snap`,
		snapshotSaveCommand(e), snapshotRestoreCommand(e))
	c.ShortUsage = "drago operator snapshot <command> [flags]"
	return c
}

func snapshotSaveCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago operator snapshot save", e)
	return &ffcli.Command{
		Name:       "save",
		ShortUsage: "drago operator snapshot save [-json] FILE",
		ShortHelp:  "Write every stored object to FILE (mode 0600)",
		LongHelp:   "Write every stored object to FILE, created with mode 0600 (an existing file\nis replaced).\n\nExample:\n  drago operator snapshot save drago.snap\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			path, err := oneArg(args, "file")
			if err != nil {
				return err
			}
			snap, err := c.Snapshot(ctx)
			if err != nil {
				return err
			}
			b, err := json.Marshal(snap)
			if err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(path), ".drago-snapshot-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(b); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), path); err != nil {
				return err
			}
			n := 0
			for _, objs := range snap.Objects {
				n += len(objs)
			}
			res := api.SnapshotRestored{Index: snap.Index, Objects: n}
			return s.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "Saved %d objects at index %d to %s.\n", n, snap.Index, path)
			})
		}),
	}
}

func snapshotRestoreCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago operator snapshot restore", e)
	return &ffcli.Command{
		Name:       "restore",
		ShortUsage: "drago operator snapshot restore [-json] FILE",
		ShortHelp:  "Replace every stored object with FILE's",
		LongHelp:   "Replace every stored object with the snapshot's, in one write; objects the\nsnapshot lacks are deleted. Every agent then gets its whole desired state.\n\nExample:\n  drago operator snapshot restore drago.snap\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			path, err := oneArg(args, "file")
			if err != nil {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var snap api.Snapshot
			if err := json.Unmarshal(b, &snap); err != nil {
				return usagef("%s is not a snapshot: %v", path, err)
			}
			res, err := c.RestoreSnapshot(ctx, &snap)
			if err != nil {
				return err
			}
			return s.print(res, func(w io.Writer) {
				fmt.Fprintf(w, "Restored %d objects; the index is now %d.\n", res.Objects, res.Index)
			})
		}),
	}
}
