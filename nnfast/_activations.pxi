# activations wrappers
