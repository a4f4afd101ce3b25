package strictjson

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"object", `{"a":1,"b":{"c":[1,{"d":2}]}}`, nil},
		{"whitespace", " \n{\"a\":1}\n\t", nil},
		{"scalar", `7`, nil},
		{"same key in two objects", `[{"a":1},{"a":2}]`, nil},
		{"duplicate", `{"a":1,"a":2}`, ErrDuplicate},
		{"duplicate escaped", `{"a":1,"\u0061":2}`, ErrDuplicate},
		{"duplicate nested", `{"params":{"seed":1,"seed":2}}`, ErrDuplicate},
		{"duplicate in array", `[{"x":1,"x":1}]`, ErrDuplicate},
		{"trailing object", `{"a":1}{"b":2}`, ErrTrailing},
		{"trailing garbage", `{"a":1} xyz`, ErrTrailing},
		{"trailing comma value", `{"a":1},`, ErrTrailing},
		{"truncated", `{"a":`, ErrSyntax},
		{"bad token", `{"a":tru}`, ErrSyntax},
		{"empty", ``, ErrSyntax},
	} {
		err := Check([]byte(tc.in))
		if tc.want == nil {
			assert.NoError(t, err, tc.name)
			// encoding/json agrees that it is valid JSON.
			assert.True(t, json.Valid([]byte(tc.in)), tc.name)
			continue
		}
		assert.ErrorIs(t, err, tc.want, tc.name)
	}
	assert.ErrorContains(t, Check([]byte(`{"params":{"seed":1,"seed":2}}`)), `"params.seed"`)
}

// TestEncodingJSONAcceptsWhatCheckRefuses documents why the package exists: the
// standard decoder keeps the last duplicate and ignores trailing data.
func TestEncodingJSONAcceptsWhatCheckRefuses(t *testing.T) {
	var v map[string]int
	assert.NoError(t, json.Unmarshal([]byte(`{"a":1,"a":2}`), &v))
	assert.Equal(t, 2, v["a"])
}
