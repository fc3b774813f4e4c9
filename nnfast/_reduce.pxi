# reduce wrappers
