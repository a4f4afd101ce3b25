// Package sched implements the diffusion schedulers of the refiner in pure Go, matching
// diffusers 0.31.0 on torch's CPU:
//
//   - Euler: EulerDiscreteScheduler (s_churn 0), stage 1 (SDXL inpainting 0.1's config:
//     scaled_linear betas 0.00085→0.012, 1000 steps, "leading" spacing, steps_offset 1).
//   - UniPC: UniPCMultistepScheduler (bh2, order 2, predict_x0, lower_order_final),
//     stage 2 (PASD builds it with from_config from SD-1.5's PNDM config, so the spacing
//     is UniPC's default "linspace").
//   - DDIM: DDIMScheduler with eta 0 (SD-1.5's config: clip_sample false,
//     set_alpha_to_one false, "leading").
//
// # Configs
//
// Config carries every field of diffusers' scheduler_config.json under the same JSON
// names. ParseConfig(class, json) reproduces Class.from_config(dict): the class's
// defaults, overwritten by the fields present; unknown fields (PNDM's skip_prk_steps)
// are ignored. New builds the scheduler; options this package does not implement
// (karras/exponential/beta sigmas, thresholding, v_prediction, zero-SNR rescaling, ...)
// give ErrUnsupported, and so do UniPC configs with which diffusers itself produces NaN
// or inf at the last step (final_sigmas_type "zero" with bh1, with predict_x0 false, or
// with lower_order_final false).
//
// # A run
//
// Step indices i count the N timesteps from 0 (the noisiest); index N is "after the last
// step". An img2img run of n steps at strength s:
//
//	s, _ := sched.NewFromJSON(sched.ClassEuler, cfgJSON)
//	begin, _ := sched.Prepare(s, n, strength)         // N, set_timesteps, begin index
//	sched.InitLatents(s, x, x0, noise, begin, strength) // add_noise, or noise·InitNoiseSigma at s = 1
//	for i := begin; i < s.NumSteps(); i++ {
//		copy(in, x); s.ScaleModelInput(in, i)           // UNet input at s.Timesteps()[i]
//		eps := cfg(unet(in, s.Timesteps()[i]))
//		s.Step(eps, x, i)                                 // x becomes the step-i+1 sample
//		s.AddNoise(ref, x0, noise, i+1)                   // masked blending target
//	}
//
// All buffers are flat float32 slices (any NCHW layout; the schedulers are element-wise).
// Coefficients are computed in float64 from diffusers' float32 tables and applied per
// element in float64, rounded to float32.
//
// # Strength
//
// StartStep is diffusers' get_timesteps: init = min(int(N·s), N) (truncating),
// t_start = max(N - init, 0); the run is indices t_start·Order() .. N-1 (Order is 1 for
// all three classes). TimestepsForStrength(n, s) picks N so that exactly n steps run:
// round(n/s) when diffusers' truncation gives n steps with it, otherwise the nearest N
// that does (s = 0.55, n = 10: round gives 18, which runs 9 steps; 19 runs 10).
//
// # State
//
// Euler and DDIM are stateless between steps. UniPC keeps the run's history (the last
// solver_order converted model outputs and the sample before the last predictor), so its
// Step must be called for BeginIndex, BeginIndex+1, ... in order (ErrStep otherwise);
// SetTimesteps and SetBeginIndex reset it. A Scheduler is for one goroutine; Clone gives
// an independent copy (cheap: the schedule is shared read-only).
//
// # Linear coefficients (the fused CUDA step)
//
// Every step here is linear in the sample x, the guided model output eps and, for UniPC,
// the converted model outputs of earlier steps. Coeffs(i) returns them as a Linear:
//
//	x0  = E·x + F·eps                       (stored as the next history entry)
//	out = A·x + B·eps + Σ_k H[k]·hist[k]    (hist[k] = x0 of step i-1-k)
//
// and Blend(s, i, guidance) packs them with the re-noising coefficients of step i+1 into
// engine.BlendCoeffs. For UniPC, diffusers' corrector starts from the stored last sample;
// Coeffs rewrites it in terms of x, which is exact when x is the previous step's output
// unchanged (PASD does no latent blending). bh2 at order 2 needs two history buffers.
// Linear.Apply is the pure-Go reference loop of that kernel.
//
// # Noise
//
// NoiseCoeffs(i) gives (a, b) with add_noise = a·orig + b·noise: (1, sigma) for Euler,
// (alpha, sigma_t) of the VP form for UniPC, (sqrt(ᾱ_t), sqrt(1-ᾱ_t)) for DDIM, (1, 0)
// at index N. diffusers' Euler and UniPC look the timestep up in the schedule (or use the
// begin/step index once set); UniPC maps an unknown timestep to the LAST index, so
// add_noise(z, noise, 900) is not noise level 900 unless 900 is scheduled.
//
// # Accuracy
//
// The float32 training tables (betas, alphas_cumprod) are reproduced bit for bit
// (torch.linspace's fused multiply-add, cumprod accumulated in float64). torch's CPU
// float32 sqrt is not correctly rounded, so about one sigma in five differs by 1 ulp. The
// tests compare every intermediate sample with diffusers within |d| <= 1e-5 + 1e-5·|ref|;
// measured maxima are below 3.1e-6 relative (2.3e-5 absolute on UniPC samples of size ~7
// after 20 steps from pure noise).
//
// The goldens in testdata/ are written by tools/export/sched_goldens.py.
package sched
