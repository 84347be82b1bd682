package systemd

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/drago", "/usr/bin/drago"},
		{"-config", "-config"},
		{"/opt/my dir/drago", `"/opt/my dir/drago"`},
		{"/opt/100%/drago", "/opt/100%%/drago"},
		{"/opt/$HOME/drago", "/opt/$$HOME/drago"},
		{`/opt/a"b\c`, `"/opt/a\"b\\c"`},
		{";", `";"`},
		{"", `""`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Quote(tt.in)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRender(t *testing.T) {
	for name, unit := range map[string]string{"agent": Agent, "server": Server} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(unit, "\nExecStart=/usr/bin/drago "+name+" -config /etc/drago/"+name+".hcl\n") {
				t.Errorf("the shipped unit does not run /usr/bin/drago %s with /etc/drago/%s.hcl", name, name)
			}
			got, err := Render(unit, []string{"/opt/drago bin/drago", name, "-config", "/etc/drago/x.hcl"})
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Replace(unit, "ExecStart=/usr/bin/drago "+name+" -config /etc/drago/"+name+".hcl",
				`ExecStart="/opt/drago bin/drago" `+name+" -config /etc/drago/x.hcl", 1)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	for _, tt := range []struct {
		name, unit string
		argv       []string
	}{
		{"relative executable", Agent, []string{"drago", "agent"}},
		{"no ExecStart", "[Service]\nType=simple\n", []string{"/usr/bin/drago"}},
		{"two ExecStart", "ExecStart=/a\nExecStart=/b\n", []string{"/usr/bin/drago"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Render(tt.unit, tt.argv); err == nil {
				t.Error("no error")
			}
		})
	}
}
