package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Errors wrapped by Check.
var (
	ErrDuplicate = errors.New("strictjson: duplicate key")
	ErrTrailing  = errors.New("strictjson: data after the JSON value")
	ErrSyntax    = errors.New("strictjson: malformed JSON")
)

// Check reports whether data is exactly one JSON value (surrounding whitespace allowed)
// whose objects never repeat a key.
func Check(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := value(dec, nil); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w at byte %d", ErrTrailing, dec.InputOffset())
	}
	return nil
}

// value reads one value; path names where it is (for messages).
func value(dec *json.Decoder, path []string) error {
	tok, err := dec.Token()
	if err != nil {
		return syntax(dec, err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return syntax(dec, err)
			}
			k, _ := kt.(string)
			if seen[k] {
				return fmt.Errorf("%w %q at byte %d", ErrDuplicate, strings.Join(append(path, k), "."), dec.InputOffset())
			}
			seen[k] = true
			if err := value(dec, append(path, k)); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; dec.More(); i++ {
			if err := value(dec, append(path, fmt.Sprint(i))); err != nil {
				return err
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing delimiter
		return syntax(dec, err)
	}
	return nil
}

func syntax(dec *json.Decoder, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w at byte %d: %v", ErrSyntax, dec.InputOffset(), err)
}
