package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFuzzFile compares against a large random corpus written by
//
//	.venv/bin/python tools/export/tokenizer_goldens.py --fuzz 30000 --fuzz-out /tmp/tokfuzz.json
//
// when GRF_TOKENIZER_FUZZ names that file. The corpus is not committed (it is large and
// the committed goldens already cover every path); this is the wide net for a port change.
func TestFuzzFile(t *testing.T) {
	path := os.Getenv("GRF_TOKENIZER_FUZZ")
	if path == "" {
		t.Skip("GRF_TOKENIZER_FUZZ not set: no random corpus to compare against (see the doc comment)")
	}
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var cases []struct {
		Text  string  `json:"text"`
		Clean string  `json:"clean"`
		IDs   []int32 `json:"ids"`
	}
	require.NoError(t, json.Unmarshal(b, &cases))
	require.NotEmpty(t, cases)
	tok := testTokenizer(t)
	bad := 0
	for _, c := range cases {
		cl, err := Clean(c.Text)
		require.NoError(t, err)
		ids, _, err := tok.Encode(c.Text)
		require.NoError(t, err)
		if cl != c.Clean || !assert.ObjectsAreEqual(c.IDs, ids[:]) {
			bad++
			if bad <= 10 {
				t.Errorf("%+q: clean want %+q got %+q; ids want %v got %v", c.Text, c.Clean, cl, c.IDs, ids)
			}
		}
	}
	t.Logf("%d random cases, %d mismatches", len(cases), bad)
}
