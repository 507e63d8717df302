package pki

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// ReadSecret reads a file holding a secret (a token, a private key) that
// flag names, and refuses one that group or others may read or change: a
// token anyone on the host can read is anyone's admin role, a key anyone
// can read is anyone's node certificate, and one they can write they can
// replace with their own. The mode is taken from the file opened (after
// symbolic links), so that what is checked is what is read.
func ReadSecret(flag, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, path, err)
	}
	if err := CheckSecretMode(flag, path, st.Mode()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flag, path, err)
	}
	return b, nil
}

// CheckSecretMode refuses a secret file's mode that gives group or others
// any access, naming the flag, the file, the mode and the fix.
func CheckSecretMode(flag, path string, mode fs.FileMode) error {
	perm := mode.Perm()
	if perm&0o077 == 0 {
		return nil
	}
	var who string
	switch read, write := perm&0o044 != 0, perm&0o022 != 0; {
	case read && write:
		who = "group or others may read and change it"
	case read:
		who = "group or others may read it"
	case write:
		who = "group or others may change it"
	default:
		who = "group or others have access to it"
	}
	return fmt.Errorf("%s %q: mode %04o: %s, and it holds a secret: chmod 600 %s", flag, path, perm, who, shellQuote(path))
}

// shellQuote makes path safe to paste into a shell, quoting it only when
// it needs it.
func shellQuote(path string) string {
	safe := path != "" && strings.IndexFunc(path, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%", r))
	}) < 0
	if safe {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
