package main

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/rs/zerolog"

	"github.com/grefine/grefine/pipeline"
	"github.com/grefine/grefine/pipeline/aq"
	"github.com/grefine/grefine/pipeline/imageio"
)

// Struct sizes this library accepts: the first release's size up to its own. Fields are
// only ever appended, so an older caller's smaller struct keeps the defaults for the
// fields it does not have. grefine_params grew once: the large-image fields (tile ...
// crop_padding) follow progress_user.
const (
	minOptionsSize = C.sizeof_grefine_options
	minParamsSize  = C.size_t(unsafe.Offsetof(C.grefine_params{}.tile))
)

func checkSize(fn, what string, got, lo, hi C.size_t) error {
	if got < lo || got > hi {
		return inputf("%s: %s.struct_size is %d, want %d (initialise it with %s_init; header and library of ABI %d)",
			fn, what, uint64(got), uint64(hi), what, C.GREFINE_ABI_VERSION)
	}
	return nil
}

func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// configFromC reads grefine_options into a pipeline.Config.
func configFromC(o *C.grefine_options) (pipeline.Config, error) {
	if o == nil {
		return pipeline.Config{}, inputf("grefine_open: opts is NULL (initialise a grefine_options with grefine_options_init)")
	}
	if err := checkSize("grefine_open", "grefine_options", o.struct_size, minOptionsSize, C.sizeof_grefine_options); err != nil {
		return pipeline.Config{}, err
	}
	cfg := pipeline.Config{
		Models: goString(o.models), HashCache: goString(o.hash_cache), Backend: goString(o.backend),
		Device: goString(o.device), Threads: int(o.threads), Slots: int(o.slots), MaxQueue: int(o.max_queue),
		AssessOnly: o.assess_only != 0, Limits: imageio.DefaultLimits,
	}
	if cfg.Models == "" {
		return cfg, inputf("grefine_open: opts.models is NULL or empty (the model-set directory is required)")
	}
	if lib := goString(o.backend_lib); lib != "" {
		cfg.BackendOptions = map[string]string{"lib": lib}
	}
	if o.log != nil {
		lvl, ok := logLevels[int(o.log_level)]
		if !ok {
			return cfg, inputf("grefine_open: opts.log_level %d: want GREFINE_LOG_DEBUG (0) .. GREFINE_LOG_ERROR (3)", int(o.log_level))
		}
		l := zerolog.New(&cLog{fn: o.log, user: o.log_user}).Level(lvl).With().Timestamp().Logger()
		cfg.Logger = &l
	}
	return cfg, nil
}

var logLevels = map[int]zerolog.Level{
	C.GREFINE_LOG_DEBUG: zerolog.DebugLevel, C.GREFINE_LOG_INFO: zerolog.InfoLevel,
	C.GREFINE_LOG_WARN: zerolog.WarnLevel, C.GREFINE_LOG_ERROR: zerolog.ErrorLevel,
}

// cLog forwards zerolog records to the caller's log callback.
type cLog struct {
	fn   C.grefine_log_fn
	user unsafe.Pointer // the caller's, C memory
}

func (w *cLog) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.InfoLevel, p) }

func (w *cLog) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	lvl := C.GREFINE_LOG_INFO
	switch {
	case l <= zerolog.DebugLevel:
		lvl = C.GREFINE_LOG_DEBUG
	case l == zerolog.WarnLevel:
		lvl = C.GREFINE_LOG_WARN
	case l >= zerolog.ErrorLevel && l <= zerolog.PanicLevel:
		lvl = C.GREFINE_LOG_ERROR
	}
	msg := C.CString(strings.TrimRight(string(p), "\n"))
	defer C.free(unsafe.Pointer(msg))
	C.grf_call_log(w.fn, w.user, C.int(lvl), msg)
	return len(p), nil
}

// reqOptions are the grefine_params fields that are not pipeline.Params.
type reqOptions struct {
	id       string
	timeout  time.Duration
	progress C.grefine_progress_fn
	user     unsafe.Pointer
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// The grefine_params fields that are no request parameter (the rest are the parameter
// table's rows, by their C field names).
var callFields = []string{"struct_size", "request_id", "timeout_ms", "progress", "progress_user"}

// cParams is the cgo type of grefine_params, for the table-driven marshalling.
var cParams = reflect.TypeOf(C.grefine_params{})

// cParamFields are grefine_params' fields as cgo compiled them (the tests compare them
// with the parameter table and the header).
func cParamFields() []reflect.StructField {
	var out []reflect.StructField
	for i := 0; i < cParams.NumField(); i++ {
		if f := cParams.Field(i); f.Name != "_" {
			out = append(out, f)
		}
	}
	return out
}

// cField is the row's field of *cp, settable (cgo's field names are unexported, so the
// field is addressed by its offset).
func cField(cp *C.grefine_params, r pipeline.Param) reflect.Value {
	sf, ok := cParams.FieldByName(r.CField)
	if !ok {
		panic("libgrefine: grefine_params has no field " + r.CField) // TestCParamsMatchTable
	}
	return reflect.NewAt(sf.Type, unsafe.Add(unsafe.Pointer(cp), sf.Offset)).Elem()
}

// paramsToC writes p into *cp, row by row of the parameter table (grefine_params_init).
// A row whose default depends on the model set gets GREFINE_SIZE_DEFAULT.
func paramsToC(p pipeline.Params, cp *C.grefine_params) {
	pv := reflect.ValueOf(&p).Elem()
	for _, r := range pipeline.ParamTable() {
		f, v := cField(cp, r), pv.FieldByName(r.Field)
		switch {
		case r.SetDefault:
			f.SetInt(C.GREFINE_SIZE_DEFAULT)
		case r.Kind == pipeline.KindBool:
			f.SetInt(int64(cbool(v.Bool())))
		default:
			f.Set(v.Convert(f.Type()))
		}
	}
}

// paramsFromC reads *cp onto the pipeline's defaults d (cp NULL: d), row by row of the
// parameter table. The pipeline validates the values; this checks only what is C's own
// (struct_size, timeout).
func paramsFromC(fn string, d pipeline.Params, cp *C.grefine_params) (pipeline.Params, reqOptions, error) {
	var ro reqOptions
	if cp == nil {
		return d, ro, nil
	}
	if err := checkSize(fn, "grefine_params", cp.struct_size, minParamsSize, C.sizeof_grefine_params); err != nil {
		return d, ro, err
	}
	p := d
	pv := reflect.ValueOf(&p).Elem()
	for _, r := range pipeline.ParamTable() {
		if sf, _ := cParams.FieldByName(r.CField); sf.Offset+sf.Type.Size() > uintptr(cp.struct_size) {
			continue // an older caller's struct ends before this field: the default
		}
		f, v := cField(cp, r), pv.FieldByName(r.Field)
		switch {
		case r.SetDefault && f.Int() == C.GREFINE_SIZE_DEFAULT:
		case r.Kind == pipeline.KindBool:
			v.SetBool(f.Int() != 0)
		default:
			v.Set(f.Convert(v.Type()))
		}
	}
	ro.id = goString(cp.request_id)
	if cp.timeout_ms < 0 {
		return d, ro, inputf("%s: params.timeout_ms %d must be >= 0 (0: none)", fn, int64(cp.timeout_ms))
	}
	ro.timeout = time.Duration(cp.timeout_ms) * time.Millisecond
	ro.progress, ro.user = cp.progress, cp.progress_user
	return p, ro, nil
}

// imageFromC copies a borrowed grefine_image into Go memory, checking its shape and the
// limits before allocating.
func imageFromC(fn string, ci *C.grefine_image, lim imageio.Limits) (*imageio.RGB8, error) {
	if ci == nil {
		return nil, inputf("%s: image is NULL", fn)
	}
	w, h, stride := int(ci.width), int(ci.height), int(ci.stride)
	switch {
	case w < 1 || h < 1:
		return nil, inputf("%s: image is %dx%d (width and height must be >= 1)", fn, w, h)
	case stride < 3*w:
		return nil, inputf("%s: image stride %d is smaller than 3*width = %d", fn, stride, 3*w)
	case ci.rgb == nil:
		return nil, inputf("%s: image.rgb is NULL", fn)
	}
	if err := lim.Check(w, h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", pipeline.ErrInput, fn, err)
	}
	if int64(stride)*int64(h) > math.MaxInt32*4 {
		return nil, inputf("%s: image of %d rows of %d bytes is too large", fn, h, stride)
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(ci.rgb)), stride*(h-1)+3*w)
	img := imageio.NewRGB8(w, h)
	for y := 0; y < h; y++ {
		copy(img.Pix[3*w*y:3*w*(y+1)], src[stride*y:stride*y+3*w])
	}
	return img, nil
}

// imageToC copies img into C memory (stride 3*width).
func imageToC(img *imageio.RGB8) C.grefine_image {
	return C.grefine_image{width: C.int(img.W), height: C.int(img.H), stride: C.int(3 * img.W),
		rgb: (*C.uint8_t)(C.CBytes(img.Pix))}
}

// floatsToC copies v into C memory (nil stays NULL).
func floatsToC(v []float32) *C.float {
	if v == nil {
		return nil
	}
	p := (*C.float)(C.malloc(C.size_t(4 * max(len(v), 1))))
	copy(unsafe.Slice((*float32)(unsafe.Pointer(p)), len(v)), v)
	return p
}

var defects = map[string]C.grefine_defect{
	aq.KindNone: C.GREFINE_DEFECT_NONE, aq.KindMissing: C.GREFINE_DEFECT_MISSING, aq.KindAttribute: C.GREFINE_DEFECT_ATTRIBUTE,
}

// assessmentToC copies a into a C-allocated grefine_assessment.
func assessmentToC(a *pipeline.Assessment, ms float64) (*C.grefine_assessment, error) {
	js, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%w: the report does not serialise: %v", pipeline.ErrInternal, err)
	}
	ca := (*C.grefine_assessment)(C.calloc(1, C.sizeof_grefine_assessment))
	ca.struct_size = C.sizeof_grefine_assessment
	ca.request_id = C.CString(a.RequestID)
	ca.width, ca.height = C.int(a.Width), C.int(a.Height)
	ca.p, ca.q = C.float(a.P), C.float(a.Q)
	if a.A != nil {
		ca.a, ca.has_a = C.float(*a.A), 1
	}
	ca.technical, ca.rationality = C.float(a.Perceptual["technical"]), C.float(a.Perceptual["rationality"])
	ca.naturalness, ca.overall = C.float(a.Perceptual["naturalness"]), C.float(a.Perceptual["overall"])
	ca.mask_fraction = C.float(a.MaskFraction)
	if n := len(a.Parts); n > 0 {
		ca.parts = (*C.grefine_part)(C.calloc(C.size_t(n), C.sizeof_grefine_part))
		ca.n_parts = C.size_t(n)
		parts := unsafe.Slice(ca.parts, n)
		for i, src := range a.Parts {
			dst := &parts[i]
			dst.text, dst.noun = C.CString(src.Text), C.CString(src.Noun)
			dst.ancestor, dst.map_from = C.int(src.Ancestor), C.int(src.MapFrom)
			dst.noun_score, dst.phrase_score = C.float(src.NounScore), C.float(src.PhraseScore)
			dst.defect = defects[src.Kind]
		}
	}
	ca.p_map, ca.a_map, ca.mask = floatsToC(a.PMap), floatsToC(a.AMap), floatsToC(a.Mask)
	ca.perceptual_mask, ca.align_mask = floatsToC(a.PerceptualMask), floatsToC(a.AlignMask)
	ca.report_json = C.CString(string(js))
	ca.pipeline_ms = C.double(ms)
	return ca, nil
}

// refinementToC copies r into a C-allocated grefine_refinement.
func refinementToC(r *pipeline.Refinement, ms float64) (*C.grefine_refinement, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: the report does not serialise: %v", pipeline.ErrInternal, err)
	}
	ca, err := assessmentToC(r.Assessment, ms)
	if err != nil {
		return nil, err
	}
	cr := (*C.grefine_refinement)(C.calloc(1, C.sizeof_grefine_refinement))
	cr.struct_size = C.sizeof_grefine_refinement
	cr.request_id = C.CString(r.RequestID)
	cr.assessment = ca
	cr.image = imageToC(r.Image)
	cr.stage1_ran, cr.stage2_ran = cbool(r.Refine.Stage1.Ran), cbool(r.Refine.Stage2.Ran)
	cr.stage1_strength, cr.stage2_strength = C.double(r.Refine.Stage1.Strength), C.double(r.Refine.Stage2.Strength)
	cr.report_json = C.CString(string(js))
	cr.pipeline_ms = C.double(ms)
	return cr, nil
}

// headerStatus is grefine.h's enum beside the pipeline's Status (main_test.go checks
// that the numbers agree, so the header cannot drift from the one table).
var headerStatus = map[pipeline.Status]int{
	pipeline.StatusOK: C.GREFINE_OK, pipeline.StatusInput: C.GREFINE_ERR_INPUT, pipeline.StatusBusy: C.GREFINE_ERR_BUSY,
	pipeline.StatusUnavailable: C.GREFINE_ERR_UNAVAILABLE, pipeline.StatusCanceled: C.GREFINE_ERR_CANCELED,
	pipeline.StatusInternal: C.GREFINE_ERR_INTERNAL,
}

// headerABI is GREFINE_ABI_VERSION as the library was compiled.
const headerABI = C.GREFINE_ABI_VERSION
