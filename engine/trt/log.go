package trt

// #include <stdint.h>
import "C"

import (
	"sync/atomic"

	"github.com/rs/zerolog"
)

// The shim has one log callback per process; it forwards to the logger of the most
// recently configured backend.
var logSink atomic.Pointer[zerolog.Logger]

// Severity values of the ABI (GRF_TRT_LOG_*).
const (
	sevInternalError = 0
	sevError         = 1
	sevWarning       = 2
	sevInfo          = 3
	sevVerbose       = 4
)

// maxSeverity picks the least severe TensorRT message worth crossing cgo for a logger:
// TensorRT info is logged at debug level, verbose at trace level.
func maxSeverity(l zerolog.Logger) int32 {
	lvl := l.GetLevel()
	if g := zerolog.GlobalLevel(); g > lvl {
		lvl = g
	}
	switch {
	case lvl <= zerolog.TraceLevel:
		return sevVerbose
	case lvl <= zerolog.DebugLevel:
		return sevInfo
	case lvl <= zerolog.WarnLevel:
		return sevWarning
	default:
		return sevError
	}
}

//export grfTrtGoLog
func grfTrtGoLog(severity C.int32_t, msg *C.char) {
	l := logSink.Load()
	if l == nil {
		return
	}
	var ev *zerolog.Event
	switch severity {
	case sevInternalError:
		ev = l.Error().Bool("internal", true)
	case sevError:
		ev = l.Error()
	case sevWarning:
		ev = l.Warn()
	case sevInfo:
		ev = l.Debug()
	default:
		ev = l.Trace()
	}
	ev.Str("component", "tensorrt").Msg(C.GoString(msg))
}
