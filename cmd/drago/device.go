package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/skip2/go-qrcode"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

func deviceCommand(e *env) *ffcli.Command {
	return group(e, "device", "Manage plain WireGuard devices (phones, laptops without an agent)", `Manage plain WireGuard devices: peers without an agent, such as phones or
laptops running the WireGuard app or wg-quick. "drago device add" makes the
key pair here and registers only the public key; the private key exists only
in the config it prints. Devices are named by id.

Example:
  drago device add -network prod -name phone -qr
  drago device list -network prod`,
		deviceAddCommand(e), deviceListCommand(e), deviceShowCommand(e), deviceDeleteCommand(e))
}

// addedDevice is the -json answer of device add.
type addedDevice struct {
	Device *api.Interface `json:"device"`
	Config string         `json:"config"` // wg-quick config with the private key
}

func deviceAddCommand(e *env) *ffcli.Command {
	s, flags := newSession("drago device add", e)
	var (
		req     api.DeviceRequest
		qr      bool
		outPath string
	)
	flags.StringVar(&req.Network, "network", "", "`network` name or id (required)")
	flags.StringVar(&req.Name, "name", "", "device name, e.g. phone (required)")
	flags.StringVar(&req.Address, "ip", "", "`IP` address to assign (default: the next free one; -address is the server's)")
	flags.BoolVar(&qr, "qr", false, "print the config as a QR code for the WireGuard mobile apps")
	flags.StringVar(&outPath, "out", "", "write the config to `file` (mode 0600) instead of stdout; it must not exist")
	return &ffcli.Command{
		Name:       "add",
		ShortUsage: "drago device add -network N -name NAME [-ip IP] [-qr] [-out FILE]",
		ShortHelp:  "Add a device and print its complete wg-quick config",
		LongHelp: `Add a plain WireGuard device. The key pair is generated here and only the
public key is sent to the server. The complete config (private key, address,
DNS and the network's peers) is printed once: keep it safe, the private key
cannot be shown again. With -qr the config is printed as a QR code; with -out
it is written to a new file readable by this user only. With -json:
{"device": ..., "config": ...}.

Example:
  drago device add -network prod -name laptop -out laptop.conf && sudo wg-quick up ./laptop.conf
  drago device add -network prod -name phone -qr
` + connectionHelp,
		FlagSet: flags,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if qr && s.json {
				return usagef("-qr and -json go alone, not together")
			}
			if outPath != "" {
				if _, err := os.Lstat(outPath); !errors.Is(err, fs.ErrNotExist) {
					return usagef("-out: %s exists; choose a new file", outPath)
				}
			}
			key, err := wgtypes.GeneratePrivateKey()
			if err != nil {
				return fmt.Errorf("generating the key pair: %w", err)
			}
			req.PublicKey = key.PublicKey().String()
			dev, err := c.CreateDevice(ctx, &req)
			if err != nil {
				return err
			}
			conf, err := deviceConfig(ctx, c, dev.ID, key)
			if err == nil && outPath != "" {
				err = writeNewFile(outPath, conf)
			}
			if err != nil {
				// Without its config the device is useless: take it back.
				if derr := c.DeleteDevice(ctx, dev.ID); derr != nil {
					return fmt.Errorf("%v (and removing device %s failed: %v)", s.apiError(err), dev.ID, s.apiError(derr))
				}
				return err
			}
			switch {
			case s.json:
				return writeJSON(s.e.stdout, addedDevice{Device: dev, Config: conf})
			case qr:
				code, err := qrcode.New(conf, qrcode.Low)
				if err != nil {
					return fmt.Errorf("encoding the QR code: %w", err)
				}
				io.WriteString(s.e.stdout, code.ToSmallString(false))
			case outPath == "":
				io.WriteString(s.e.stdout, conf)
			}
			where := "above"
			if outPath != "" {
				where = "in " + outPath
			}
			fmt.Fprintf(s.e.stderr, "Added device %s (id %s, %s). Its private key is only %s; the server has the public key %s.\n",
				dev.DeviceName, dev.ID, strings.Join(dev.Addresses, ", "), where, dev.PublicKey)
			return nil
		}),
	}
}

// deviceConfig returns the server's wg-quick view of the device with the
// private key placeholder replaced by key.
func deviceConfig(ctx context.Context, c *api.Client, id string, key wgtypes.Key) (string, error) {
	text, err := c.InterfaceConfig(ctx, id)
	if err != nil {
		return "", err
	}
	lines := strings.SplitAfter(text, "\n")
	section, n := "", 0
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "[") {
			section = t
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		if ok && section == "[Interface]" && strings.TrimSpace(k) == "PrivateKey" {
			lines[i] = "PrivateKey = " + key.String() + "\n"
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("the server's config of device %s has %d PrivateKey lines in [Interface], want 1", id, n)
	}
	out := strings.Join(lines, "")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out, nil
}

// writeNewFile creates path with mode 0600 and writes data; it never
// replaces an existing file.
func writeNewFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask
		f.Close()
		return fmt.Errorf("-out: %w", err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return fmt.Errorf("-out: %w", err)
	}
	return f.Close()
}

func deviceListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago device list", e)
	var o api.ListOptions
	fs.StringVar(&o.Network, "network", "", "only devices of this `network`")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago device list [-network N] [-json]",
		ShortHelp:  "List devices",
		LongHelp:   "List plain WireGuard devices.\n\nExample:\n  drago device list -network prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			devs, err := listAll(ctx, c.Devices, o)
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, devs)
			}
			n := lookupNames(ctx, c)
			rows := make([][]string, len(devs))
			for i, d := range devs {
				rows[i] = []string{d.DeviceName, d.ID, n.network(d.NetworkID), joinOrDash(d.Addresses), d.PublicKey}
			}
			table(s.e.stdout, []string{"NAME", "ID", "NETWORK", "ADDRESSES", "PUBLIC KEY"}, rows)
			return nil
		}),
	}
}

// getDevice reads GET /devices/{id}. The typed client has no method for it
// yet, so this goes through its generic Do.
func getDevice(ctx context.Context, c *api.Client, id string) (*api.Interface, error) {
	var d api.Interface
	if err := c.Do(ctx, http.MethodGet, "/devices/"+url.PathEscape(id), nil, nil, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

func deviceShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago device show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago device show [-json] <id>",
		ShortHelp:  "Show a device",
		LongHelp:   "Show a device. Its config, without private key: drago interface config <id>.\n\nExample:\n  drago device show 3f2a9c0d1e2b4f5a\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "device id")
			if err != nil {
				return err
			}
			d, err := getDevice(ctx, c, id)
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, d)
			}
			n := lookupNames(ctx, c)
			fields(s.e.stdout, []field{
				{"Name", d.DeviceName}, {"ID", d.ID}, {"Network", n.network(d.NetworkID)},
				{"Addresses", joinOrDash(d.Addresses)}, {"Public key", d.PublicKey}, {"Created", timeString(&d.CreatedAt)},
			})
			return nil
		}),
	}
}

func deviceDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago device delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago device delete <id>",
		ShortHelp:  "Remove a device",
		LongHelp:   "Remove a device; the network's hosts drop it as a peer.\n\nExample:\n  drago device delete 3f2a9c0d1e2b4f5a\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "device id")
			if err != nil {
				return err
			}
			if err := c.DeleteDevice(ctx, id); err != nil {
				return err
			}
			return s.deleted("device", id)
		}),
	}
}
