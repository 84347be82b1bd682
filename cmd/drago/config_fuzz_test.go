package main

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// configFlagSets returns the flag sets of the commands that read config
// files, with the block each reads.
func configFlagSets() map[string]*flag.FlagSet {
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	return map[string]*flag.FlagSet{"server": serverCommand(e).FlagSet, "agent": agentCommand(e).FlagSet}
}

// setting is one flag value a config file gives.
type setting struct{ name, value string }

// parseConfig runs the HCL parser of block over src, collecting settings.
func parseConfig(fs *flag.FlagSet, block string, src []byte) ([]setting, error) {
	var out []setting
	err := hclParser(fs, block)(bytes.NewReader(src), func(name, value string) error {
		out = append(out, setting{name, value})
		return nil
	})
	return out, err
}

// configFile renders settings as a config file of top-level attributes:
// one per flag, a list when the flag is given more than once.
func configFile(settings []setting) []byte {
	f := hclwrite.NewEmptyFile()
	var names []string
	values := map[string][]cty.Value{}
	for _, s := range settings {
		if _, ok := values[s.name]; !ok {
			names = append(names, s.name)
		}
		values[s.name] = append(values[s.name], cty.StringVal(s.value))
	}
	for _, n := range names {
		v := values[n][0]
		if len(values[n]) > 1 {
			v = cty.TupleVal(values[n])
		}
		f.Body().SetAttributeValue(strings.ReplaceAll(n, "-", "_"), v)
	}
	return f.Bytes()
}

// byFlag groups settings by flag, in order within each.
func byFlag(settings []setting) map[string][]string {
	out := map[string][]string{}
	for _, s := range settings {
		out[s.name] = append(out[s.name], s.value)
	}
	return out
}

// FuzzHCLConfig parses a config file as the server and the agent read
// theirs. A file refused gets an error that says it is about the config;
// a file taken sets only flags the command has (never -config), and the
// settings it gives, written back as a file (configFile), parse to the same
// settings.
func FuzzHCLConfig(f *testing.F) {
	for _, s := range []string{
		"data_dir = \"/srv/drago\"\nserver {\n  addr = \"0.0.0.0:9000\"\n  heartbeat_grace = \"1m\"\n  tls {\n    cert_file = \"/etc/drago/tls.crt\"\n    key_file = \"/etc/drago/tls.key\"\n  }\n}\nagent {\n  server = \"http://10.0.0.1:8080\"\n  label = { site = \"par1\", rack = \"r1\" }\n  join = \"dgj_x\"\n}\n",
		"agent {\n  label = [\"a=b\", \"c=d\"]\n  drift_interval = 30\n  key_rotation_interval = 1.5\n}\n",
		"log_level = \"debug\"\nserver {\n  log_level = \"info\"\n  dev = true\n}\n",
		"server {\n  addr = \"${x}\"\n}\n", "server {\n  addr = \"$${x} %%{y}\"\n}\n", "agent {\n  name = <<EOT\nline\nEOT\n}\n",
		"agent {\n  label = { a = 1 }\n}\n", "agent {\n  label = [null, \"a=b\"]\n}\n", "server { addr = null }\n",
		"agent {\n  server = 1e1000000\n}\n", "agent {\n  server = -0.000001\n}\n", "client {\n}\n", "config = \"x\"\n",
		"server {\n  addr = [[\"a\"], [\"b\"]]\n}\n", "server {\n  addr = \"x\" \n  addr = \"y\"\n}\n", "server {\n  addr = \"\\u00e9\\n\\t\"\n}\n",
		"server {\n  addr = upper(\"x\")\n}\n", "server {\n  addr = [for x in [1]: x]\n}\n", "server {\n  addr = true ? \"a\" : \"b\"\n}\n",
		"server {\n  addr = -1\n  tls {\n    cert_file = 9223372036854775807\n    key_file = 0.1\n  }\n}\n", "agent {\n  label = { \"a b\" = \"c\", (x) = \"d\" }\n}\n",
		"server {\n  addr = \"%{for a in [1,2,3]}%{for b in [1,2,3]}xx%{endfor}%{endfor}\"\n}\n", "server {\n  addr = \"${1 + 2}\"\n}\n",
	} {
		f.Add([]byte(s))
	}
	sets := configFlagSets()
	f.Fuzz(func(t *testing.T, src []byte) {
		for block, fs := range sets {
			got, err := parseConfig(fs, block, src)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "config") {
					t.Fatalf("%s: %q: error %q does not say it is about the config", block, src, err)
				}
				continue
			}
			size := 0
			for _, s := range got {
				if fs.Lookup(s.name) == nil || s.name == "config" {
					t.Fatalf("%s: %q: sets flag %q", block, src, s.name)
				}
				size += len(s.value)
			}
			if size > 8*len(src)+64 {
				t.Fatalf("%s: %q: %d bytes of config give %d bytes of values", block, src, len(src), size)
			}
			back := configFile(got)
			again, err := parseConfig(fs, block, back)
			if err != nil {
				t.Fatalf("%s: %q: written back as %q, which is refused: %v", block, src, back, err)
			}
			if a, b := byFlag(got), byFlag(again); !equalSettings(a, b) {
				t.Fatalf("%s: %q: settings %q, written back as %q: %q", block, src, a, back, b)
			}
		}
	})
}

func equalSettings(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestHCLConfigValues pins what FuzzHCLConfig found: a number written out
// in full (1e10000000 took a minute and ten megabytes) and expressions
// that expand (for loops, template directives) are refused; numbers that
// fit are written as flags read them.
func TestHCLConfigValues(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.String("addr", "", "")
	for _, tc := range []struct{ src, want, err string }{
		{`addr = 12`, "12", ""},
		{`addr = -3`, "-3", ""},
		{`addr = 0.5`, "0.5", ""},
		{`addr = 1e-7`, "1e-07", ""},
		{`addr = "a$${b}%%{c}"`, "a${b}%{c}", ""},
		{`addr = 1e10000000`, "", "out of range"},
		{`addr = 1e-400`, "", "out of range"},
		{`addr = 9223372036854775808`, "", "out of range"},
		{`addr = "${1 + 2}"`, "", "not an expression"},
		{`addr = [for x in [1, 2]: "a"]`, "", "not an expression"},
		{`addr = "%{for x in [1, 2]}a%{endfor}"`, "", "not an expression"},
		{`addr = 1 + 2`, "", "not an expression"},
	} {
		got, err := parseConfig(fs, "server", []byte(tc.src))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, %v; want an error containing %q", tc.src, got, err, tc.err)
		case tc.err == "" && (err != nil || len(got) != 1 || got[0].value != tc.want):
			t.Errorf("%s: got %v, %v; want %q", tc.src, got, err, tc.want)
		}
	}
}
