package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// configBlocks are the HCL blocks a config file may hold; a command reads the
// top-level attributes and its own block and skips the others.
var configBlocks = []string{"server", "agent"}

// hclParser returns an ff config-file parser for HCL files such as
// /etc/drago/drago.hcl. Keys map to flags with '_' read as '-' and nested
// blocks joined by '-' (server { tls { cert_file } } -> tls-cert-file). An
// unknown key is an error that names it and its line. Values are literals:
// strings, numbers, bools, and lists and maps of them; an expression (a
// function call, an interpolation, a for loop) is an error.
func hclParser(fs *flag.FlagSet, block string) func(io.Reader, func(name, value string) error) error {
	return func(r io.Reader, set func(name, value string) error) error {
		src, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		f, diags := hclsyntax.ParseConfig(src, "config", hcl.InitialPos)
		if diags.HasErrors() {
			return fmt.Errorf("config: %s", diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		if err := setAttrs(fs, body, "", "", set); err != nil {
			return err
		}
		for _, b := range body.Blocks {
			known := false
			for _, k := range configBlocks {
				known = known || b.Type == k
			}
			if !known {
				return fmt.Errorf("config line %d: unknown block %q (want %s)", b.DefRange().Start.Line, b.Type, strings.Join(configBlocks, " or "))
			}
			if b.Type == block {
				if err := walkBlock(fs, b.Body, b.Type+".", "", set); err != nil {
					return err
				}
			}
		}
		return nil
	}
}

func walkBlock(fs *flag.FlagSet, body *hclsyntax.Body, path, prefix string, set func(string, string) error) error {
	if err := setAttrs(fs, body, path, prefix, set); err != nil {
		return err
	}
	for _, b := range body.Blocks {
		if err := walkBlock(fs, b.Body, path+b.Type+".", prefix+b.Type+"-", set); err != nil {
			return err
		}
	}
	return nil
}

// setAttrs sets a flag for each attribute; lists set a repeatable flag once
// per element and maps once per "key=value".
func setAttrs(fs *flag.FlagSet, body *hclsyntax.Body, path, prefix string, set func(string, string) error) error {
	for _, a := range body.Attributes {
		key := path + a.Name
		name := prefix + strings.ReplaceAll(a.Name, "_", "-")
		if fs.Lookup(name) == nil || name == "config" {
			return fmt.Errorf("config line %d: unknown key %q", a.SrcRange.Start.Line, key)
		}
		if !literal(a.Expr) {
			return fmt.Errorf("config line %d: key %q: want a value (string, number, bool, list or map), not an expression", a.SrcRange.Start.Line, key)
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return fmt.Errorf("config key %q: %s", key, diags.Error())
		}
		vals, err := flatten(v)
		if err != nil {
			return fmt.Errorf("config key %q: %v", key, err)
		}
		for _, s := range vals {
			if err := set(name, s); err != nil {
				return fmt.Errorf("config key %q: %v", key, err)
			}
		}
	}
	return nil
}

// literal reports whether e is a plain value: a string without
// interpolation or directive, a number, a bool, null, or a list or map of
// those. Expressions are refused: for loops and template directives would
// let a few lines of config expand into gigabytes.
func literal(e hclsyntax.Expression) bool {
	switch e := e.(type) {
	case *hclsyntax.LiteralValueExpr:
		return true
	case *hclsyntax.TemplateExpr:
		for _, p := range e.Parts {
			if _, ok := p.(*hclsyntax.LiteralValueExpr); !ok {
				return false
			}
		}
		return true
	case *hclsyntax.UnaryOpExpr: // -1
		_, ok := e.Val.(*hclsyntax.LiteralValueExpr)
		return ok && e.Op == hclsyntax.OpNegate
	case *hclsyntax.TupleConsExpr:
		for _, x := range e.Exprs {
			if !literal(x) {
				return false
			}
		}
		return true
	case *hclsyntax.ObjectConsExpr:
		for _, it := range e.Items {
			k, ok := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr)
			if !ok || k.ForceNonLiteral || !literal(it.ValueExpr) {
				return false
			}
			if t, ok := k.Wrapped.(*hclsyntax.ScopeTraversalExpr); !(ok && len(t.Traversal) == 1) && !literal(k.Wrapped) {
				return false
			}
		}
		return true
	}
	return false
}

func flatten(v cty.Value) ([]string, error) {
	if v.IsNull() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return []string{v.AsString()}, nil
	case t == cty.Number:
		s, err := formatNumber(v.AsBigFloat())
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	case t == cty.Bool:
		return []string{fmt.Sprint(v.True())}, nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			s, err := flatten(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		var out []string
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			if e.Type() != cty.String {
				return nil, fmt.Errorf("map value for %q must be a string", k.AsString())
			}
			out = append(out, k.AsString()+"="+e.AsString())
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", t.FriendlyName())
}

// formatNumber writes a config number as a flag value: an integer in
// decimal, any other number in the shortest form that reads back as the
// same float64. Numbers beyond int64 or float64 are refused: written out
// in full, 1e10000000 would take a minute and ten megabytes.
func formatNumber(f *big.Float) (string, error) {
	if i, acc := f.Int64(); acc == big.Exact {
		return strconv.FormatInt(i, 10), nil
	}
	x, _ := f.Float64()
	if f.IsInt() || math.IsInf(x, 0) || x == 0 {
		return "", errors.New("the number is out of range")
	}
	return strconv.FormatFloat(x, 'g', -1, 64), nil
}
