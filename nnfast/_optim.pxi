# optim wrappers
