package ort

import (
	"fmt"
	"sort"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/grefine/grefine/engine"
)

// Session setting keys of engine.OpenOptions.Session (besides ONNX Runtime's own
// "session.*" config keys, which are passed through unchanged).
const (
	// SettingGraphOpt is the graph optimisation level: disable, basic, extended, all
	// (ONNX Runtime's default, all: no lower level measured faster; bench/RESULTS.md).
	SettingGraphOpt = "graph_opt"
	// SettingMemPattern turns ONNX Runtime's memory-pattern planning on (1) or off (0).
	SettingMemPattern = "mem_pattern"
	// SettingCPUArena turns the CPU memory arena on (1) or off (0).
	SettingCPUArena = "cpu_arena"
)

var graphOptLevels = map[string]ortgo.GraphOptimizationLevel{
	"disable":  ortgo.GraphOptimizationLevelDisableAll,
	"basic":    ortgo.GraphOptimizationLevelEnableBasic,
	"extended": ortgo.GraphOptimizationLevelEnableExtended,
	"all":      ortgo.GraphOptimizationLevelEnableAll,
}

// applySession applies engine.OpenOptions.Session to so, in key order.
func applySession(so *ortgo.SessionOptions, settings map[string]string) error {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := settings[k]
		var err error
		switch {
		case k == SettingGraphOpt:
			l, ok := graphOptLevels[v]
			if !ok {
				return fmt.Errorf("%w: session setting %s=%q (want disable, basic, extended or all)", engine.ErrUnavailable, k, v)
			}
			err = so.SetGraphOptimizationLevel(l)
		case k == SettingMemPattern || k == SettingCPUArena:
			if v != "0" && v != "1" {
				return fmt.Errorf("%w: session setting %s=%q (want 0 or 1)", engine.ErrUnavailable, k, v)
			}
			if k == SettingMemPattern {
				err = so.SetMemPattern(v == "1")
			} else {
				err = so.SetCpuMemArena(v == "1")
			}
		case strings.HasPrefix(k, "session."):
			err = so.AddSessionConfigEntry(k, v)
		default:
			return fmt.Errorf("%w: unknown session setting %q (known: %s, %s, %s, session.*)", engine.ErrUnavailable, k, SettingGraphOpt, SettingMemPattern, SettingCPUArena)
		}
		if err != nil {
			return fmt.Errorf("%w: session setting %s=%q: %v", engine.ErrUnavailable, k, v, err)
		}
	}
	return nil
}
