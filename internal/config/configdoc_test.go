package config

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/testserver"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the config structs")

const modulePath = "github.com/novacron/novacron"

// TestConfigurationReference keeps docs/configuration.md in step with the
// config structs: every key, its default and its doc comment. Run
// `go test ./internal/config -run TestConfigurationReference -update`
// after changing a config struct.
func TestConfigurationReference(t *testing.T) {
	got := generateReference(t)
	path := filepath.Join(testserver.RepoRoot(), "docs", "configuration.md")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), got, "docs/configuration.md is stale: rerun with -update")
}

type docIndex map[string]map[string]string // "pkg.Type" -> field -> doc

func (d docIndex) load(t *testing.T, pkgPath string) {
	if _, ok := d[pkgPath+".loaded"]; ok {
		return
	}
	d[pkgPath+".loaded"] = nil
	dir := filepath.Join(testserver.RepoRoot(), strings.TrimPrefix(strings.TrimPrefix(pkgPath, modulePath), "/"))
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	require.NoError(t, err)
	for _, p := range pkgs {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					return true
				}
				m := map[string]string{}
				for _, fl := range st.Fields.List {
					doc := strings.Join(strings.Fields(fl.Doc.Text()), " ")
					for _, name := range fl.Names {
						m[name.Name] = doc
					}
				}
				d[pkgPath+"."+ts.Name.Name] = m
				return true
			})
		}
	}
}

func generateReference(t *testing.T) string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

NovaCron reads one YAML file (` + "`--config.file`" + ` or ` + "`NOVACRON_CONFIG_FILE`" + `); with
no file it runs on the defaults below: every role in one process, the
in-process bus, the embedded store and the simulated fleet. Unknown keys
are errors. ` + "`novacron config check FILE`" + ` lists every problem with its key
path and line and exits non-zero; the same checks run at start-up.

**Environment overrides.** Every scalar key can be set from the
environment as ` + "`NOVACRON_`" + ` followed by its path in upper case with dots as
underscores: ` + "`NOVACRON_API_TOKEN`" + `, ` + "`NOVACRON_BUS_TYPE=kafka`" + `,
` + "`NOVACRON_BUS_KAFKA_BROKERS=k1:9092,k2:9092`" + ` (lists are comma-separated).
The environment wins over the file; command-line flags win over both.

**Secrets** never go in the file: keys ending in ` + "`_file`" + ` name a file
that holds the secret (the token, a password), or use the environment.
Secrets are never logged.

A production example is in [deploy/novacron.example.yaml](../deploy/novacron.example.yaml).

This page is generated from the configuration structs' doc comments by
` + "`go test ./internal/config -run TestConfigurationReference -update`" + `.

| key | type | default | description |
|---|---|---|---|
`)
	idx := docIndex{}
	rows := map[string]string{}
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		ty := v.Type()
		idx.load(t, ty.PkgPath())
		docs := idx[ty.PkgPath()+"."+ty.Name()]
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			fv := v.Field(i)
			if strings.Contains(opts, "inline") {
				walk(fv, prefix)
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					fv = reflect.New(f.Type.Elem()).Elem()
				} else {
					fv = fv.Elem()
				}
			}
			doc := docs[f.Name]
			if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeOf(time.Time{}) {
				rows[path] = fmt.Sprintf("| `%s` | section | | %s |\n", path, doc)
				walk(fv, path)
				continue
			}
			rows[path] = fmt.Sprintf("| `%s` | %s | %s | %s |\n", path, typeName(fv.Type()), defaultValue(fv), strings.ReplaceAll(doc, "|", "\\|"))
		}
	}
	walk(reflect.ValueOf(NewDefault()).Elem(), "")
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(rows[k])
	}
	return b.String()
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t == reflect.TypeOf(time.Time{}):
		return "timestamp (RFC 3339)"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	case t.Kind() == reflect.Map:
		return "map"
	case t.Kind() == reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

func defaultValue(v reflect.Value) string {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		if v.Int() == 0 {
			return "`0`"
		}
		return "`" + time.Duration(v.Int()).String() + "`"
	case v.Type() == reflect.TypeOf(time.Time{}):
		if v.Interface().(time.Time).IsZero() {
			return ""
		}
	case v.Kind() == reflect.String && v.String() == "":
		return ""
	case v.Kind() == reflect.Slice && v.Len() == 0, v.Kind() == reflect.Map && v.Len() == 0:
		return ""
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		return fmt.Sprintf("%d entries", v.Len())
	}
	return fmt.Sprintf("`%v`", v.Interface())
}
