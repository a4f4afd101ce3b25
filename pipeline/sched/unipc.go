package sched

import (
	"fmt"
	"math"
	"slices"
)

// UniPC is diffusers' UniPCMultistepScheduler (predictor UniP + corrector UniC, B(h)
// variants bh1/bh2), the stage-2 (PASD) scheduler. It keeps the run's history: the
// converted model outputs of the last solver_order steps and the sample before the last
// predictor, so a run must call Step for BeginIndex, BeginIndex+1, ... in order.
type UniPC struct {
	sigmaSchedule
	// Run state (diffusers' model_outputs, lower_order_nums, last_sample, this_order).
	models    [][]float32 // solver_order slots, newest last; nil = empty
	lowerNums int
	last      []float32
	thisOrder int
	next      int // the index the next Step must have; -1 before the first
}

var _ Scheduler = (*UniPC)(nil)

// NewUniPC builds a UniPC scheduler from cfg (Class is not checked). solver_type
// "midpoint", "heun" and "logrho" become "bh2" as in diffusers. Configs with which
// diffusers 0.31.0 itself produces non-finite samples are refused (ErrUnsupported):
// final_sigmas_type "zero" with predict_x0 false or solver_type "bh1" (NaN at the last
// step), or with lower_order_final false and solver_order > 1 (±inf at the last step).
func NewUniPC(cfg Config) (*UniPC, error) {
	if err := cfg.validateCommon(); err != nil {
		return nil, err
	}
	switch cfg.SolverType {
	case "bh1", "bh2":
	case "midpoint", "heun", "logrho":
		cfg.SolverType = "bh2"
	default:
		return nil, fmt.Errorf("%w: solver_type %q (want bh1 or bh2)", ErrConfig, cfg.SolverType)
	}
	if cfg.SolverOrder < 1 {
		return nil, fmt.Errorf("%w: solver_order %d (want >= 1)", ErrConfig, cfg.SolverOrder)
	}
	if len(cfg.SolverP) > 0 && string(cfg.SolverP) != "null" {
		return nil, fmt.Errorf("%w: unipc: solver_p", ErrUnsupported)
	}
	if _, err := cfg.finalSigma([]float32{0}); err != nil {
		return nil, err
	}
	if cfg.FinalSigmasType == "zero" {
		if !cfg.PredictX0 {
			return nil, fmt.Errorf("%w: unipc: predict_x0 false with final_sigmas_type zero "+
				"(diffusers gives NaN at the last step)", ErrUnsupported)
		}
		if cfg.SolverType == "bh1" {
			return nil, fmt.Errorf("%w: unipc: bh1 with final_sigmas_type zero (diffusers gives NaN at the last step)",
				ErrUnsupported)
		}
		if !cfg.LowerOrderFinal && cfg.SolverOrder > 1 {
			return nil, fmt.Errorf("%w: unipc: lower_order_final false with final_sigmas_type zero "+
				"(diffusers gives inf at the last step)", ErrUnsupported)
		}
	}
	ac, err := alphasCumprod(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Class = ClassUniPC
	cfg.DisableCorrector = slices.Clone(cfg.DisableCorrector)
	u := &UniPC{sigmaSchedule: sigmaSchedule{schedule: schedule{cfg: cfg, ac: ac}, train: trainSigmas(ac)}}
	u.reset()
	return u, nil
}

func (u *UniPC) reset() {
	u.models = make([][]float32, u.cfg.SolverOrder)
	u.lowerNums, u.last, u.thisOrder, u.next = 0, nil, 0, -1
}

// SetTimesteps: integer timesteps; "linspace" takes N+1 rounded, evenly spaced values
// over [0, T-1] and drops the 0; "leading" uses T // (N+1) as the ratio; "trailing" as
// the other classes. The sigmas are the training sigmas at the timesteps, then the final
// sigma.
func (u *UniPC) SetTimesteps(n int) error {
	if n < 1 {
		return fmt.Errorf("%w: %d inference steps (want >= 1)", ErrStep, n)
	}
	T := u.cfg.NumTrainTimesteps
	var ts []float64
	switch u.cfg.TimestepSpacing {
	case "linspace":
		lin := npLinspace(0, float64(T-1), n+1)
		ts = make([]float64, n)
		for i := 1; i <= n; i++ {
			ts[n-i] = math.RoundToEven(lin[i])
		}
	case "leading":
		ratio := T / (n + 1)
		ts = make([]float64, n)
		for i := 1; i <= n; i++ {
			ts[n-i] = float64(i*ratio + u.cfg.StepsOffset)
		}
	default:
		ts = spacedTimesteps(u.cfg, n)
	}
	if err := u.setSigmas(ts); err != nil {
		return err
	}
	u.reset()
	return nil
}

// SetBeginIndex implements Scheduler; it also resets the run state.
func (u *UniPC) SetBeginIndex(i int) error {
	if err := u.setBegin(i); err != nil {
		return err
	}
	u.reset()
	return nil
}

// InitNoiseSigma is 1.
func (u *UniPC) InitNoiseSigma() float64 { return 1 }

// InputScale is 1 (UniPC does not scale the model input).
func (u *UniPC) InputScale(i int) (float64, error) {
	if err := u.checkStep(i, false); err != nil {
		return 0, err
	}
	return 1, nil
}

// ScaleModelInput leaves x unchanged.
func (u *UniPC) ScaleModelInput(x []float32, i int) error {
	_, err := u.InputScale(i)
	return err
}

// NoiseCoeffs is (alpha, sigma_t) of sigma_i: 1/sqrt(sigma²+1) and sigma/sqrt(sigma²+1).
// diffusers finds i from the timestep (or the begin/step index once set); a timestep
// that is not in the schedule maps to the LAST index there, so add_noise(x, n, 900) is
// not noise level 900 unless 900 is a scheduled timestep.
func (u *UniPC) NoiseCoeffs(i int) (float64, float64, error) {
	if err := u.checkStep(i, true); err != nil {
		return 0, 0, err
	}
	if i == len(u.ts) {
		return 1, 0, nil
	}
	a, s := alphaSigma(u.sigmas[i])
	return a, s, nil
}

// AddNoise implements Scheduler.
func (u *UniPC) AddNoise(dst, orig, noise []float32, i int) error {
	a, b, err := u.NoiseCoeffs(i)
	if err != nil {
		return err
	}
	return addNoise(dst, orig, noise, a, b)
}

// lambda is log(alpha) - log(sigma_t) at step index j (the half log-SNR).
func (u *UniPC) lambda(j int) float64 {
	a, s := alphaSigma(u.sigmas[j])
	return math.Log(a) - math.Log(s)
}

// order returns the solver order diffusers uses at step i of a run begun at begin:
// lower_order_final caps it at N - i, and the warm-up at the number of steps run + 1.
func (u *UniPC) order(i, begin int) int {
	o := u.cfg.SolverOrder
	if u.cfg.LowerOrderFinal {
		o = min(o, len(u.ts)-i)
	}
	return min(o, min(i-begin, u.cfg.SolverOrder)+1)
}

// bh holds the quantities of one UniP/UniC update from step index s to step index t.
type bh struct {
	alphaT, sigmaT, alphaS, sigmaS float64
	hPhi1, bH                      float64
	rks                            []float64 // r_k for k = 1..order-1
	rhosP, rhosC                   []float64
}

// bhCoeffs computes diffusers' multistep_uni_{p,c}_bh_update scalars for an update from
// index s to index t of the given order; the history model of r_k is at index s-k.
func (u *UniPC) bhCoeffs(s, t, order int, corrector bool) bh {
	var c bh
	c.alphaT, c.sigmaT = alphaSigma(u.sigmas[t])
	c.alphaS, c.sigmaS = alphaSigma(u.sigmas[s])
	lt, ls := u.lambda(t), u.lambda(s)
	h := lt - ls
	for k := 1; k < order; k++ {
		c.rks = append(c.rks, (u.lambda(s-k)-ls)/h)
	}
	rks := append(slices.Clone(c.rks), 1)
	hh := h
	if u.cfg.PredictX0 {
		hh = -h
	}
	c.hPhi1 = math.Expm1(hh)
	hPhiK := c.hPhi1/hh - 1
	fact := 1.0
	c.bH = hh
	if u.cfg.SolverType == "bh2" {
		c.bH = math.Expm1(hh)
	}
	R := make([][]float64, order)
	b := make([]float64, order)
	for i := 1; i <= order; i++ {
		R[i-1] = make([]float64, order)
		for k := range rks {
			R[i-1][k] = math.Pow(rks[k], float64(i-1))
		}
		b[i-1] = hPhiK * fact / c.bH
		fact *= float64(i + 1)
		hPhiK = hPhiK/hh - 1/fact
	}
	switch {
	case order == 2:
		c.rhosP = []float64{0.5}
	case order > 2:
		sub := make([][]float64, order-1)
		for i := range sub {
			sub[i] = slices.Clone(R[i][:order-1])
		}
		c.rhosP = solve(sub, slices.Clone(b[:order-1]))
	}
	if corrector {
		if order == 1 {
			c.rhosC = []float64{0.5}
		} else {
			c.rhosC = solve(R, b)
		}
	}
	return c
}

// solve solves the small dense system m·x = v by Gaussian elimination with partial
// pivoting (in float64; diffusers uses torch.linalg.solve in float32). m and v are
// overwritten.
func solve(m [][]float64, v []float64) []float64 {
	n := len(v)
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		m[c], m[p] = m[p], m[c]
		v[c], v[p] = v[p], v[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for k := c; k < n; k++ {
				m[r][k] -= f * m[c][k]
			}
			v[r] -= f * v[c]
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		s := v[r]
		for k := r + 1; k < n; k++ {
			s -= m[r][k] * x[k]
		}
		x[r] = s / m[r][r]
	}
	return x
}

// convert is diffusers' convert_model_output at step i: the predicted x0
// (x - sigma_t·eps)/alpha with predict_x0, eps itself otherwise.
func (u *UniPC) convert(eps, x []float32, i int) []float32 {
	out := make([]float32, len(x))
	if !u.cfg.PredictX0 {
		copy(out, eps)
		return out
	}
	a, s := alphaSigma(u.sigmas[i])
	for j := range x {
		out[j] = float32((float64(x[j]) - s*float64(eps[j])) / a)
	}
	return out
}

// update is the shared tail of UniP and UniC:
//
//	x_t = ratio·x - pref·hPhi1·m0 - pref·bH·(Σ_k rho_k·D1_k + rhoT·(mT - m0))
//
// with D1_k = (hist_k - m0)/r_k, ratio = sigma_t/sigma_s and pref = alpha_t (predict_x0),
// or alpha_t/alpha_s and sigma_t (otherwise). mT is nil for the predictor.
func (u *UniPC) update(c bh, x, m0 []float32, hist [][]float32, rhos []float64, mT []float32, rhoT float64) []float32 {
	ratio, pref := c.sigmaT/c.sigmaS, c.alphaT
	if !u.cfg.PredictX0 {
		ratio, pref = c.alphaT/c.alphaS, c.sigmaT
	}
	out := make([]float32, len(x))
	for j := range x {
		m := float64(m0[j])
		res := 0.0
		for k, rk := range c.rks {
			if k < len(rhos) {
				res += rhos[k] * float64(float32((float64(hist[k][j])-m)/rk))
			}
		}
		if mT != nil {
			res += rhoT * float64(float32(float64(mT[j])-m))
		}
		v := ratio*float64(x[j]) - pref*c.hPhi1*m
		if len(rhos) > 0 || mT != nil {
			v -= pref * c.bH * res
		}
		out[j] = float32(v)
	}
	return out
}

// Step runs diffusers' UniPC step at index i: convert the model output; unless this is
// the run's first step or i-1 is in disable_corrector, correct x with UniC from the
// stored last sample; push the converted output into the history; predict with UniP of
// the current order. i must be BeginIndex for the first step of a run and one more than
// the previous step's index after that.
func (u *UniPC) Step(eps, x []float32, i int) error {
	if err := u.checkStep(i, false); err != nil {
		return err
	}
	if err := sameLen(x, eps); err != nil {
		return err
	}
	want := u.next
	if want < 0 {
		want = u.begin
	}
	if i != want {
		return fmt.Errorf("%w: unipc: step %d, want %d (steps run in order from the begin index)", ErrStep, i, want)
	}
	if u.last != nil && len(u.last) != len(x) {
		return fmt.Errorf("%w: sample of %d elements, the run's history has %d", ErrSize, len(x), len(u.last))
	}
	so := u.cfg.SolverOrder
	mT := u.convert(eps, x, i)
	sample := slices.Clone(x)
	if i > 0 && !slices.Contains(u.cfg.DisableCorrector, i-1) && u.last != nil {
		c := u.bhCoeffs(i-1, i, u.thisOrder, true)
		hist := make([][]float32, len(c.rks))
		for k := range hist {
			hist[k] = u.models[so-2-k]
		}
		rc := c.rhosC
		sample = u.update(c, u.last, u.models[so-1], hist, rc[:len(rc)-1], mT, rc[len(rc)-1])
	}
	copy(u.models, u.models[1:])
	u.models[so-1] = mT
	u.thisOrder = u.order(i, i-u.lowerNums)
	u.last = sample
	c := u.bhCoeffs(i, i+1, u.thisOrder, false)
	hist := make([][]float32, len(c.rks))
	for k := range hist {
		hist[k] = u.models[so-2-k]
	}
	copy(x, u.update(c, sample, mT, hist, c.rhosP, nil, 0))
	if u.lowerNums < so {
		u.lowerNums++
	}
	u.next = i + 1
	return nil
}

// Coeffs writes step i as a Linear over x, eps and the history hist[k] = x0 of step
// i-1-k (len(H) = solver_order). The corrector, which diffusers computes from the stored
// last sample, is rewritten in terms of x: the previous predictor and the corrector share
// their first two terms, so x_c = x - pref·bH·(Σ_k (rhoC_k - rhoP_k)·D1_k + rhoC_T·(x0 -
// hist[0])). This holds when x is exactly the previous step's output (no latent blending
// between steps; PASD blends none).
func (u *UniPC) Coeffs(i int) (Linear, error) {
	if err := u.checkStep(i, false); err != nil {
		return Linear{}, err
	}
	if i < u.begin {
		return Linear{}, fmt.Errorf("%w: unipc: step %d before the begin index %d", ErrStep, i, u.begin)
	}
	so := u.cfg.SolverOrder
	var E, F float64
	if u.cfg.PredictX0 {
		a, s := alphaSigma(u.sigmas[i])
		E, F = 1/a, -s/a
	} else {
		E, F = 0, 1
	}
	pref := func(c bh) float64 {
		if u.cfg.PredictX0 {
			return c.alphaT
		}
		return c.sigmaT
	}
	// Corrector: x_c = cx·x + cm·x0 + Σ cH[k]·hist[k].
	cx, cm := 1.0, 0.0
	cH := make([]float64, so)
	if i > u.begin && !slices.Contains(u.cfg.DisableCorrector, i-1) {
		pc := u.order(i-1, u.begin)
		c := u.bhCoeffs(i-1, i, pc, true)
		g := -pref(c) * c.bH
		rT := c.rhosC[pc-1]
		cm += g * rT
		cH[0] -= g * rT
		for k, rk := range c.rks {
			rp := 0.0
			if k < len(c.rhosP) {
				rp = c.rhosP[k]
			}
			w := g * (c.rhosC[k] - rp) / rk
			cH[k+1] += w
			cH[0] -= w
		}
	}
	// Predictor: out = r·x_c + pm·x0 + Σ pH[k]·hist[k] (its history k+1 is hist[k]).
	p := u.order(i, u.begin)
	c := u.bhCoeffs(i, i+1, p, false)
	r := c.sigmaT / c.sigmaS
	if !u.cfg.PredictX0 {
		r = c.alphaT / c.alphaS
	}
	pm := -pref(c) * c.hPhi1
	pH := make([]float64, so)
	for k, rk := range c.rks {
		w := -pref(c) * c.bH * c.rhosP[k] / rk
		pH[k] += w
		pm -= w
	}
	mt := r*cm + pm
	l := Linear{A: r*cx + mt*E, B: mt * F, E: E, F: F, H: make([]float64, so)}
	for k := range l.H {
		l.H[k] = r*cH[k] + pH[k]
	}
	return l, nil
}

// Clone implements Scheduler. The history buffers are never written in place, so the
// copy shares them.
func (u *UniPC) Clone() Scheduler {
	c := *u
	c.models = slices.Clone(u.models)
	return &c
}
