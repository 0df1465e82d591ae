package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultsValidate(t *testing.T) {
	require.NoError(t, NewDefault().Validate())
	cfg, err := Parse(nil, "", nil)
	require.NoError(t, err)
	require.Equal(t, NewDefault(), cfg)
}

func TestGoodFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		_, err := Load(f)
		require.NoError(t, err, f)
	}
	cfg, err := Load("testdata/full.good.yaml")
	require.NoError(t, err)
	require.Equal(t, int32(12), cfg.Topics.Partitions)
	require.Equal(t, "novacron.samples", cfg.Topics.Samples, "unset keys keep defaults")
	require.Equal(t, "/etc/novacron/token", cfg.API.TokenFile)
}

func TestBadFiles(t *testing.T) {
	cases := map[string][]string{
		"unknown.bad.yaml": {
			`api.listen_adress (testdata/unknown.bad.yaml:3): unknown key "listen_adress"`,
			`topics.colour (testdata/unknown.bad.yaml:6): unknown key "colour"`,
		},
		"invalid.bad.yaml": {
			`log.level (testdata/invalid.bad.yaml:2): must be debug, info, warn or error, not "loud"`,
			`topics.events (testdata/invalid.bad.yaml:5): topic "same" is already used by topics.samples`,
			`topics.partitions (testdata/invalid.bad.yaml:6): must be at least 1`,
		},
		"syntax.bad.yaml": {`(testdata/syntax.bad.yaml:`},
		"type.bad.yaml": {
			`topics.partitions (testdata/type.bad.yaml:2): cannot unmarshal !!str ` + "`many`",
			`ingest.drain_timeout (testdata/type.bad.yaml:4):`,
		},
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", name))
			require.Error(t, err)
			var ps Problems
			require.True(t, errors.As(err, &ps))
			for _, w := range wants {
				require.Contains(t, err.Error(), w)
			}
			if name != "syntax.bad.yaml" {
				require.Len(t, ps, len(wants), err.Error())
			}
		})
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	env := []string{
		"NOVACRON_API_TOKEN=s3cret",
		"NOVACRON_TOPICS_PARTITIONS=24",
		"NOVACRON_INGEST_DRAIN_TIMEOUT=1m",
		"NOVACRON_TOPICS_CREATE=false",
		"UNRELATED=1",
	}
	cfg, err := Parse([]byte("topics:\n  partitions: 3\n"), "f.yaml", env)
	require.NoError(t, err)
	require.Equal(t, "s3cret", cfg.API.Token)
	require.Equal(t, int32(24), cfg.Topics.Partitions, "environment wins over the file")
	require.Equal(t, time.Minute, cfg.Ingest.DrainTimeout)
	require.False(t, cfg.Topics.Create)

	_, err = Parse(nil, "", []string{"NOVACRON_TOPICS_PARTITIONS=lots", "NOVACRON_LOG_LEVEL=loud"})
	require.Error(t, err)
	require.Contains(t, err.Error(), `topics.partitions (environment NOVACRON_TOPICS_PARTITIONS): invalid integer "lots"`)

	_, err = Parse(nil, "", []string{"NOVACRON_LOG_LEVEL=loud"})
	require.ErrorContains(t, err, `log.level (environment NOVACRON_LOG_LEVEL): must be`)
}

func TestReadSecretNeverEchoesContent(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tok")
	require.NoError(t, os.WriteFile(p, []byte("  abc\n"), 0o600))
	s, err := ReadSecret("api.token_file", p)
	require.NoError(t, err)
	require.Equal(t, "abc", s)
	_, err = ReadSecret("api.token_file", p+".missing")
	require.ErrorContains(t, err, "api.token_file")
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.good.yaml", "unknown.bad.yaml", "invalid.bad.yaml", "type.bad.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 16<<10 {
			return
		}
		cfg, err := Parse(b, "fuzz.yaml", nil)
		if err == nil {
			require.NoError(t, cfg.Validate(), "Parse accepted a config that does not validate")
		}
	})
}
