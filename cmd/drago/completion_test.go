package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// completionScript runs drago completion shell and writes the script to a file.
func completionScript(t *testing.T, shell string) (script, path string) {
	t.Helper()
	r := runDrago(t, nil, "completion", shell)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("drago completion %s: exit %d: %s", shell, r.code, r.stderr)
	}
	path = filepath.Join(t.TempDir(), "drago."+shell)
	if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	return r.stdout, path
}

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is missing: install the Debian package %s (.ci/apt-packages)", name, pkg)
	}
}

func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell  string
		syntax []string // command checking the script's syntax, with the file appended
		pkg    string
	}{
		{"bash", []string{"bash", "-n"}, "bash"},
		{"zsh", []string{"zsh", "-n"}, "zsh"},
		{"fish", []string{"fish", "--no-execute"}, "fish"},
		{"powershell", nil, ""}, // no PowerShell on Debian; the content is checked
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			script, path := completionScript(t, tt.shell)
			// Every command path and some flags of the tree are in the script.
			for _, s := range []string{"network", "rotate-keys", "join-token", "completion", "powershell", "ipv4-range", "token-file", "a-allowed-ips"} {
				if !strings.Contains(script, s) {
					t.Errorf("script lacks %q", s)
				}
			}
			if tt.syntax == nil {
				return
			}
			needTool(t, tt.syntax[0], tt.pkg)
			if out, err := exec.Command(tt.syntax[0], append(tt.syntax[1:], path)...).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", strings.Join(tt.syntax, " "), path, err, out)
			}
		})
	}
}

func TestBashCompletion(t *testing.T) {
	needTool(t, "bash", "bash")
	_, path := completionScript(t, "bash")
	tests := []struct {
		line string // words typed; the last one is completed
		want string
	}{
		{"drago ser", "server service"},
		{"drago network cr", "create"},
		{"drago network create -ip", "-ipv4-range -ipv6-range"},
		{"drago network create -name list -to", "-token -token-file -topology"},
		{"drago join-token create -ma", "-max-uses"},
		{"drago host ", "list show update delete rotate-keys"},
		{"drago service install -", "-agent -config -server -help"},
		{"drago completion ", "bash zsh fish powershell"},
		{"drago device add -out ", ""}, // file names, from bash's default completion
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			words := strings.Fields(tt.line)
			if strings.HasSuffix(tt.line, " ") {
				words = append(words, "")
			}
			quoted := make([]string, len(words))
			for i, w := range words {
				quoted[i] = sq(w)
			}
			prog := "source " + sq(path) + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" + itoa(len(words)-1) +
				"\n_drago\necho \"${COMPREPLY[*]}\""
			out, err := exec.Command("bash", "--norc", "--noprofile", "-c", prog).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if diff := cmp.Diff(tt.want, strings.TrimSpace(string(out))); diff != "" {
				t.Errorf("completions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFishCompletion(t *testing.T) {
	needTool(t, "fish", "fish")
	_, path := completionScript(t, "fish")
	tests := []struct{ line, want string }{
		{"drago ser", "server service"},
		{"drago network cr", "create"},
		{"drago token create -po", "-policy"},
		{"drago host ", "delete list rotate-keys show update"}, // fish sorts
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			out, err := exec.Command("fish", "--no-config", "-c", "source "+sq(path)+"; complete -C "+sq(tt.line)).CombinedOutput()
			if err != nil {
				t.Fatalf("fish: %v\n%s", err, out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				name, _, _ := strings.Cut(l, "\t")
				got = append(got, name)
			}
			if diff := cmp.Diff(tt.want, strings.Join(got, " ")); diff != "" {
				t.Errorf("completions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestZshCompletionTable(t *testing.T) {
	needTool(t, "zsh", "zsh")
	_, path := completionScript(t, "zsh")
	prog := "autoload -U compinit; compinit -u -D; source " + sq(path) + `
__drago_items "drago network"; print -r -- ${subs%%:*}
__drago_items "drago join-token create"; print -r -- ${flags%%:*}
print -r -- ${_comps[drago]}`
	out, err := exec.Command("zsh", "-f", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	want := "list show create update delete topology\n" +
		"-address -ca-cert -expires -json -label -max-uses -name -network -token -token-file -help\n" +
		"_drago\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
