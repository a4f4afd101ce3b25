// Package strictjson refuses the JSON that encoding/json accepts silently: an object
// with the same key twice (encoding/json keeps the last one) and data after the value
// (json.Decoder stops at the end of the first value and leaves the rest unread).
//
// Check(data) walks the tokens once, keeping a set of keys per open object, and
// returns ErrDuplicate, ErrTrailing or ErrSyntax (each wrapped with the byte offset and,
// for a duplicate, the key's path such as params.seed). Call it before decoding; it
// allocates a little per key, never in proportion to the values.
//
//	if err := strictjson.Check(body); err != nil {
//		return fmt.Errorf("body: %w", err)
//	}
//	err := json.Unmarshal(body, &req)
//
// Keys are compared after JSON unescaping, as encoding/json compares them ("a" and
// "\u0061" are the same key). encoding/json also matches field names case-insensitively;
// Check does not, so {"seed":1,"Seed":2} passes Check and callers that decode into
// structs must refuse unknown fields themselves (json.Decoder.DisallowUnknownFields does
// not catch case variants either: pipeline.ParseParams matches names exactly).
package strictjson
