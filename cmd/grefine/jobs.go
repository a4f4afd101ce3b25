package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/internal/strictjson"
)

// maxJobLine bounds one JSONL line.
const maxJobLine = 1 << 20

// job is one line of a --batch file (or the single --image/--prompt job).
type job struct {
	Line   int             `json:"-"`
	Image  string          `json:"image"`
	Prompt *string         `json:"prompt"`
	ID     string          `json:"id,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	// Err, when set, is why the line cannot run (it is reported as an error line).
	Err string `json:"-"`
}

func (j job) prompt() string {
	if j.Prompt == nil {
		return ""
	}
	return *j.Prompt
}

// readBatch reads a JSONL batch: one {"image", "prompt", "id", "params"} object per line.
// A UTF-8 BOM is skipped; blank lines are ignored. A malformed line, a line over 1 MiB
// or a missing image fails that line only (Err, reported with its line number); unknown
// fields are logged and ignored. Relative image paths are resolved against the batch
// file's folder. Jobs without an id get their line number as id ("line-0003"); two jobs
// with one id are a usage error naming both lines.
func readBatch(path string, log *zerolog.Logger) ([]job, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--batch: %v", err)
	}
	defer f.Close()
	base := filepath.Dir(path)
	r := bufio.NewReaderSize(f, 64<<10)
	var jobs []job
	seen := map[string]int{}
	for n := 1; ; n++ {
		line, tooLong, err := readLine(r, maxJobLine)
		if err == io.EOF && line == nil {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("--batch %s line %d: %w", path, n, err)
		}
		if n == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		j := job{Line: n}
		switch {
		case tooLong:
			j.Err = fmt.Sprintf("line %d is longer than %d bytes", n, maxJobLine)
		case len(bytes.TrimSpace(line)) == 0:
			if err == io.EOF {
				return finishBatch(path, jobs)
			}
			continue
		default:
			j.Err = decodeJob(line, &j, log, n)
		}
		if j.Err == "" && !filepath.IsAbs(j.Image) {
			j.Image = filepath.Join(base, j.Image)
		}
		if j.ID == "" {
			j.ID = fmt.Sprintf("line-%04d", n)
		}
		if j.Err == "" && (strings.ContainsAny(j.ID, `/\`) || j.ID == "." || j.ID == ".." || strings.HasPrefix(j.ID, ".")) {
			j.Err = fmt.Sprintf("id %q must be a plain file name", j.ID)
		}
		if first, dup := seen[j.ID]; dup {
			return nil, usagef("--batch %s: lines %d and %d have the same id %q", path, first, n, j.ID)
		}
		seen[j.ID] = n
		jobs = append(jobs, j)
		if err == io.EOF {
			break
		}
	}
	return finishBatch(path, jobs)
}

func finishBatch(path string, jobs []job) ([]job, error) {
	if len(jobs) == 0 {
		return nil, usagef("--batch %s has no jobs", path)
	}
	return jobs, nil
}

// decodeJob parses one line into j; it returns the line's error ("" if none).
func decodeJob(line []byte, j *job, log *zerolog.Logger, n int) string {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return fmt.Sprintf("line %d is not a JSON object: %v", n, err)
	}
	if err := strictjson.Check(line); err != nil {
		return fmt.Sprintf("line %d: %v", n, err)
	}
	for k := range raw {
		switch k {
		case "image", "prompt", "id", "params":
		default:
			log.Warn().Int("line", n).Str("field", k).Msg("batch: unknown field ignored")
		}
	}
	if err := json.Unmarshal(line, j); err != nil {
		return fmt.Sprintf("line %d: %v", n, err)
	}
	if j.Image == "" {
		return fmt.Sprintf("line %d has no \"image\"", n)
	}
	if j.Prompt == nil {
		return fmt.Sprintf("line %d has no \"prompt\" (use \"\" for none)", n)
	}
	return ""
}

// readLine reads one line without its newline; a line over limit is consumed and
// reported as tooLong (its content dropped).
func readLine(r *bufio.Reader, limit int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if errors.Is(err, io.EOF) && (line != nil || tooLong) {
				return line, tooLong, io.EOF
			}
			return nil, tooLong, err
		}
		if !tooLong {
			if len(line)+len(chunk) > limit {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if !isPrefix {
			if line == nil {
				line = []byte{}
			}
			return line, tooLong, nil
		}
	}
}
