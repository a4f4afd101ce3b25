package tile

import "errors"

var (
	// ErrConfig: a tiling setting is out of range or does not line up with the VAE grid.
	ErrConfig = errors.New("tile: bad configuration")
	// ErrShape: an image, tensor or window does not have the size the plan expects.
	ErrShape = errors.New("tile: bad shape")
	// ErrEmptyMask: CropRegion got a mask with no masked pixel (there is nothing to crop
	// around; the refiner skips stage 1 for an empty mask before it gets here).
	ErrEmptyMask = errors.New("tile: empty mask")
)
