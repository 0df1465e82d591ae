package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFileName is the file in the data directory that holds a generated
// API token.
const TokenFileName = "api-token"

// TokenSource says where the API token came from.
type TokenSource struct {
	// Token is the secret. Never log it.
	Token string
	// Path is the file the token was read from or generated into; empty
	// when it came from the configuration or environment directly.
	Path string
	// Generated is true when the token was created on this start.
	Generated bool
}

// ResolveToken picks the API token: token when non-empty (config or
// NOVACRON_API_TOKEN), else the content of tokenFile, else the token in
// <dataDir>/api-token, which is generated with mode 0600 when missing.
func ResolveToken(token, tokenFile, dataDir string) (TokenSource, error) {
	if token != "" {
		return TokenSource{Token: token}, nil
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return TokenSource{}, fmt.Errorf("read api.token_file %q: %w", tokenFile, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return TokenSource{}, fmt.Errorf("api.token_file %q is empty", tokenFile)
		}
		return TokenSource{Token: t, Path: tokenFile}, nil
	}
	return ResolveTokenFile(filepath.Join(dataDir, TokenFileName))
}

// ResolveTokenFile returns the token held by the file at path, generating
// a random one into it (mode 0600, directory created) when the file is
// missing or empty.
func ResolveTokenFile(path string) (TokenSource, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if t := strings.TrimSpace(string(b)); t != "" {
			return TokenSource{Token: t, Path: path}, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return TokenSource{}, fmt.Errorf("read API token %q: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return TokenSource{}, fmt.Errorf("generate API token: %w", err)
	}
	t := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return TokenSource{}, fmt.Errorf("create directory of %q: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return TokenSource{}, fmt.Errorf("write API token %q: %w", path, err)
	}
	return TokenSource{Token: t, Path: path, Generated: true}, nil
}
