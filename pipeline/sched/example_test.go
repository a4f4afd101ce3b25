package sched_test

import (
	"fmt"

	"github.com/grefine/grefine/pipeline/sched"
)

// An img2img run of stage 1: 10 Euler steps at strength 0.625 on SDXL-inpainting's
// scheduler config, with a stand-in for the UNet.
func Example() {
	cfgJSON := []byte(`{"_class_name": "EulerDiscreteScheduler", "beta_schedule": "scaled_linear",
		"beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "timestep_spacing": "leading"}`)
	s, err := sched.NewFromJSON("", cfgJSON)
	if err != nil {
		panic(err)
	}
	begin, err := sched.Prepare(s, 10, 0.625)
	if err != nil {
		panic(err)
	}
	fmt.Println("num_inference_steps", s.NumSteps(), "begin", begin, "first timestep", s.Timesteps()[begin])

	orig := []float32{0.5, -1, 0.25}
	noise := []float32{1, 0.5, -2}
	x := make([]float32, len(orig))
	if err := sched.InitLatents(s, x, orig, noise, begin, 0.625); err != nil {
		panic(err)
	}
	in := make([]float32, len(x))
	for i := begin; i < s.NumSteps(); i++ {
		copy(in, x)
		if err := s.ScaleModelInput(in, i); err != nil { // the UNet input
			panic(err)
		}
		eps := noise // stand-in for unet(in, s.Timesteps()[i])
		if err := s.Step(eps, x, i); err != nil {
			panic(err)
		}
	}
	// With the true noise as the model output, Euler lands on the original.
	fmt.Printf("%.4f\n", x)
	// Output:
	// num_inference_steps 16 begin 6 first timestep 559
	// [0.5000 -1.0000 0.2500]
}
