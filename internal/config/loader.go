package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/novacron/novacron/internal/confutil"
)

// EnvPrefix prefixes every environment override: NOVACRON_API_LISTEN_ADDRESS
// sets api.listen_address.
const EnvPrefix = "NOVACRON_"

// Problem is one configuration problem with where it came from.
type Problem struct {
	// Key is the dotted YAML key path ("collectors.sim.interval"); empty
	// for problems with the document as a whole.
	Key string
	// File and Line locate the key in the YAML file; Line is 0 when the
	// value came from a default or the environment.
	File string
	Line int
	// Env names the environment variable that set the value, if any.
	Env string
	Msg string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
	}
	switch {
	case p.Env != "":
		fmt.Fprintf(&b, " (environment %s)", p.Env)
	case p.Line > 0:
		fmt.Fprintf(&b, " (%s:%d)", p.File, p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found while loading a configuration.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	if len(ps) == 1 {
		return "invalid configuration: " + lines[0]
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// Validator is implemented by every config struct.
type Validator interface{ Validate() error }

// load decodes YAML from data (file names where it came from) into dst,
// which holds the defaults, applies environment overrides from environ, and
// validates. Unknown keys are errors. Every problem is reported, each with
// its key path and line.
func load(data []byte, file string, environ []string, dst Validator) error {
	var root yaml.Node
	var problems Problems
	if len(bytes.TrimSpace(data)) > 0 {
		if err := yaml.Unmarshal(data, &root); err != nil {
			return Problems{yamlProblem(file, err)}
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
			problems = append(problems, decodeProblems(file, &root, err)...)
		}
	}
	envSet := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			envSet[k] = v
		}
	}
	envKeys := map[string]string{} // key path -> env name
	problems = append(problems, applyEnv(reflect.ValueOf(dst).Elem(), "", envSet, envKeys)...)
	if len(problems) > 0 {
		return problems
	}
	if err := dst.Validate(); err != nil {
		for _, e := range confutil.Flatten(err) {
			p := Problem{File: file, Msg: e.Error()}
			var fe *confutil.FieldError
			if errors.As(e, &fe) {
				p.Key, p.Msg = fe.Field, fe.Err.Error()
				p.Key = refineKey(reflect.TypeOf(dst).Elem(), p.Key, p.Msg)
				last := p.Key[strings.LastIndex(p.Key, ".")+1:]
				p.Msg = strings.TrimPrefix(p.Msg, last+": ")
				if env, ok := envKeys[p.Key]; ok {
					p.Env = env
				} else {
					p.Line = lineOf(&root, p.Key)
				}
			}
			problems = append(problems, p)
		}
		return problems
	}
	return nil
}

var lineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

func yamlProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{File: file, Line: n, Msg: m[2]}
	}
	return Problem{File: file, Msg: msg}
}

var unknownRe = regexp.MustCompile(`field (\S+) not found in type`)

func decodeProblems(file string, root *yaml.Node, err error) Problems {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{yamlProblem(file, err)}
	}
	var out Problems
	for _, e := range te.Errors {
		p := yamlProblem(file, errors.New(e))
		if m := unknownRe.FindStringSubmatch(p.Msg); m != nil {
			p.Key = pathAtLine(root, p.Line, m[1])
			p.Msg = fmt.Sprintf("unknown key %q", m[1])
		} else if p.Line > 0 {
			p.Key = pathAtLine(root, p.Line, "")
		}
		out = append(out, p)
	}
	return out
}

// lineOf returns the line of the deepest existing key along path, or 0.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				line = n.Content[i].Line
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// pathAtLine finds the dotted path of the key named key on line (or of
// any key on that line when key is empty).
func pathAtLine(root *yaml.Node, line int, key string) string {
	var walk func(n *yaml.Node, prefix string) string
	walk = func(n *yaml.Node, prefix string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p := walk(c, prefix); p != "" {
					return p
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				path := k.Value
				if prefix != "" {
					path = prefix + "." + k.Value
				}
				if k.Line == line && (key == "" || k.Value == key) {
					return path
				}
				if p := walk(n.Content[i+1], path); p != "" {
					return p
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if p := walk(c, fmt.Sprintf("%s[%d]", prefix, i)); p != "" {
					return p
				}
			}
		}
		return ""
	}
	return walk(root, "")
}

var durationType = reflect.TypeOf(time.Duration(0))

// EnvName returns the environment variable that overrides a key path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// applyEnv sets the leaf fields of v whose environment variable is set.
func applyEnv(v reflect.Value, prefix string, env map[string]string, used map[string]string) Problems {
	var out Problems
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		inline := strings.Contains(f.Tag.Get("yaml"), ",inline")
		if name == "" && !inline {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" && name != "" {
			path = prefix + "." + name
		} else if inline {
			path = prefix
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != durationType && !implementsText(fv) {
			out = append(out, applyEnv(fv, path, env, used)...)
			continue
		}
		envName := EnvName(path)
		raw, ok := env[envName]
		if !ok {
			continue
		}
		used[path] = envName
		if err := setFromString(fv, raw); err != nil {
			out = append(out, Problem{Key: path, Env: envName, Msg: err.Error()})
		}
	}
	return out
}

func implementsText(v reflect.Value) bool {
	if !v.CanAddr() {
		return false
	}
	_, ok := v.Addr().Interface().(encoding.TextUnmarshaler)
	return ok
}

func setFromString(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		n := reflect.New(v.Type().Elem())
		if err := setFromString(n.Elem(), s); err != nil {
			return err
		}
		v.Set(n)
		return nil
	}
	if v.CanAddr() {
		if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			return tu.UnmarshalText([]byte(s))
		}
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid unsigned integer %q", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid number %q", s)
		}
		v.SetFloat(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment")
		}
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// ReadSecret returns the secret held by the file at path, trimmed of
// surrounding white space. The error names the config key, never the
// content.
func ReadSecret(key, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s (%s): %w", key, path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

var leadingKey = regexp.MustCompile(`^([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\b`)

// refineKey turns a problem reported on a section ("storage.sender") whose
// message starts with one of the section's keys ("queue_capacity must be
// > 0") into a problem on that key, so its line can be found. Components
// that return plain errors worded with their YAML keys get precise
// locations this way.
func refineKey(root reflect.Type, key, msg string) string {
	m := leadingKey.FindString(msg)
	if m == "" {
		return key
	}
	t := fieldType(root, key)
	if t == nil {
		return key
	}
	if fieldType(t, m) == nil {
		return key
	}
	if key == "" {
		return m
	}
	return key + "." + m
}

// fieldType returns the type reached by following the dotted YAML path
// from t, or nil when a step is not a field.
func fieldType(t reflect.Type, path string) reflect.Type {
	if path == "" {
		return t
	}
	for _, part := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		t = findField(t, part)
		if t == nil {
			return nil
		}
	}
	return t
}

func findField(t reflect.Type, name string) reflect.Type {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		n, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			if ft := findField(f.Type, name); ft != nil {
				return ft
			}
			continue
		}
		if n == "" {
			n = strings.ToLower(f.Name)
		}
		if n == name {
			return f.Type
		}
	}
	return nil
}
