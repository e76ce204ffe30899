package providerset

import (
	"context"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

var _ resource.Preparer = (*restarting)(nil)

// Prepare asks the provider to prepare a coming change, bounded like an
// operation; a provider that cannot prepare prepares nothing.
func (r *restarting) Prepare(ctx context.Context, req resource.PrepareRequest) (resource.Diagnostics, error) {
	return call(ctx, r, "prepare", func(ctx context.Context, p resource.Provider) (resource.Diagnostics, error) {
		pr, ok := p.(resource.Preparer)
		if !ok {
			return nil, nil
		}
		return pr.Prepare(ctx, req)
	})
}
